/* The intervention log: one line per event, preformatted on the stack and written with a single
 * write(2) through the real write, so lines from several processes sharing a file never interleave.
 * No stdio, no malloc, no locks: it may be reached from any hook. */
#pragma once
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

/* Counts the event and logs it as fd=shown_fd, with the local and peer address of the socket fd and
 * the extra fields. Events that a socket's traffic can repeat are logged at most once a second per
 * socket, those that a shortage repeats once a second per process, and the next line carries
 * suppressed=N; the others come once per call of the program's and are always logged.
 * Preserves errno. */
void log_event(enum log_event event, int fd, int shown_fd, const struct log_field *fields, size_t nfields);
#define LOG_FIELDS(...)                                                                              \
	(const struct log_field[]){__VA_ARGS__}, sizeof((const struct log_field[]){__VA_ARGS__}) / sizeof(struct log_field)
#define LOG_EVENT(event, fd, ...) log_event((event), (fd), (fd), LOG_FIELDS(__VA_ARGS__))
/* For a socket the library holds under another number than the one the program knew. */
#define LOG_EVENT_AS(event, fd, shown_fd, ...) log_event((event), (fd), (shown_fd), LOG_FIELDS(__VA_ARGS__))

/* One line of every counter and the extra fields, if TCPRARE_SUMMARY=on and the process had a TCP
 * socket. */
void log_summary(const struct log_field *extra, size_t nextra);

/* A configuration problem: one line, built from the NULL-terminated parts, to stderr (or syslog where
 * stderr is a socket, as in inetd-style servers, or closed). */
void log_problem(const char *const *parts);
