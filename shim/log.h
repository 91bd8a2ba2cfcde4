/* The intervention log: one line per event, preformatted on the stack and written with a single
 * write(2) through the real write, so lines from several processes sharing a file never interleave.
 * No stdio, no malloc, no locks: it may be reached from any hook. No write of a line raises a signal
 * in the program or waits: a line that cannot be written now is dropped, and counted (log_dropped in
 * the summary). */
#pragma once
#include "layout.h"
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each event is an event word and an action word in the log, and a counter in the exit summary. */
enum log_event {
	EV_CLOSEWAIT_BLOCKED,
	EV_CLOSEWAIT_OBSERVED,
	EV_BACKLOG_RAISED,
	EV_BACKLOG_OBSERVED,
	EV_BACKLOG_TRUNCATED,
	EV_ACCEPT_QUEUE_FULL,
	EV_LINGER_STARTED,
	EV_LINGER_DRAINED,
	EV_LINGER_TIMEOUT,
	EV_LINGER_OBSERVED,
	EV_LINGER_SKIPPED,
	EV_COUNT
};

struct log_field {
	const char *key;
	const char *text; /* NULL: the field is the number */
	long long number;
};
#define FIELD_NUM(k, v) ((struct log_field){.key = (k), .number = (long long)(v)})
#define FIELD_TEXT(k, v) ((struct log_field){.key = (k), .text = (v)})

/* Opens the configured destination; reports an unusable TCPRARE_LOG and falls back to the default. */
void log_open(void);
/* In a forked child: the counters start again, and a log path with %p is reopened for its own pid. */
void log_after_fork_child(void);

/* A TCP socket's local and peer address (an IPv4 one fits a sockaddr_in6); family 0 where unknown. */
struct socket_addresses {
	struct sockaddr_in6 local, peer;
};
void socket_addresses_read(int fd, struct socket_addresses *addresses);

/* Whether lines go anywhere: callers skip work done only for the log. */
bool log_enabled(void);
/* No line from now on, not even the summary: the program installs a seccomp filter (seccomp.c), and
 * a line costs system calls of its own (getpid, fstat, a reopened file). */
void log_silence(void);

/* Counts the event and logs it with fd's local and peer address and the extra fields. Events that a
 * socket's traffic can repeat are logged at most once a second per socket, those that a shortage
 * repeats once a second per process, and the next line carries suppressed=N; the others come once
 * per call of the program's and are always logged. Preserves errno. */
COLD void log_event(enum log_event event, int fd, const struct log_field *fields, size_t nfields);
/* The same for a socket the program knew as shown_fd, with addresses read while it was connected
 * (a lingering socket's peer is often gone by the time its line is written). */
COLD void log_event_at(enum log_event event, int shown_fd, const struct socket_addresses *addresses,
		  const struct log_field *fields, size_t nfields);
#define LOG_FIELDS(...)                                                                              \
	(const struct log_field[]){__VA_ARGS__}, sizeof((const struct log_field[]){__VA_ARGS__}) / sizeof(struct log_field)
#define LOG_EVENT(event, fd, ...) log_event((event), (fd), LOG_FIELDS(__VA_ARGS__))
#define LOG_EVENT_AT(event, shown_fd, addresses, ...)                                                \
	log_event_at((event), (shown_fd), (addresses), LOG_FIELDS(__VA_ARGS__))

/* One line of every counter and the extra fields, if TCPRARE_SUMMARY=on and the process had a TCP
 * socket. */
void log_summary(const struct log_field *extra, size_t nextra);

/* A configuration problem: one line, built from the NULL-terminated parts, to stderr (or syslog where
 * stderr is a socket, as in inetd-style servers, or closed), as harmlessly as every other line. */
void log_problem(const char *const *parts);
