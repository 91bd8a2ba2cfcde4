/* The TCPRARE_* settings: parsed once at load, read-only afterwards (but for a seccomp filter's
 * stand-down, which turns the interventions off once: seccomp.c). A bad value is reported in one
 * line naming the variable and what it accepts, and that setting keeps its default. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

enum mode { MODE_OFF, MODE_OBSERVE, MODE_ON };
enum backlog_policy { BACKLOG_OFF, BACKLOG_OBSERVE, BACKLOG_MAX, BACKLOG_FIXED };
enum log_dest { LOG_AUTO, LOG_STDERR, LOG_SYSLOG, LOG_OFF, LOG_FILE };
enum log_format { LOG_TEXT, LOG_JSON };

#define MAX_PORT_RANGES 32
#define LINGER_MAX_LIMIT 16384 /* sockets lingering at once, at most */
/* A connection quiet this long is idle: idle timeouts are seconds, half-closes come with the talk.
 * The guard's default threshold, and when lingering takes a peer for one that is not sending. */
#define CLOSEWAIT_IDLE_MS_DEFAULT 1000

struct config {
	enum mode closewait;
	uint32_t closewait_idle_ms;
	bool closewait_scope_all; /* accepted, inherited and received sockets too, not only connected ones */
	enum mode linger;
	uint32_t linger_ms;      /* the whole drain */
	uint32_t linger_idle_ms; /* without data from the peer */
	uint32_t linger_max;     /* sockets lingering at once; 0: a quarter of RLIMIT_NOFILE */
	enum backlog_policy backlog;
	int backlog_fixed; /* with BACKLOG_FIXED */
	struct { uint16_t lo, hi; } ports[MAX_PORT_RANGES];
	unsigned int port_ranges; /* 0: every port */
	enum log_dest log;
	char log_path[PATH_MAX]; /* with LOG_FILE; "%p" not yet expanded */
	enum log_format log_format;
	bool summary;
	/* The program installed a seccomp filter: every intervention is off from then on (seccomp.c).
	 * The one setting that changes after load, once, from false to true. */
	bool confined;
};

/* All zero, so every intervention is off, until config_load() sets the defaults: a hook reached
 * before the library's constructor only passes through. */
extern struct config config;

/* Sets the defaults, then reads the environment (ignored in secure-execution mode, as glibc does). */
void config_load(void);
bool config_port_listed(unsigned int port);
/* TCPRARE_PORTS lists the socket's local or peer port (two syscalls, unless every port is listed). */
bool config_ports_cover(int fd);
