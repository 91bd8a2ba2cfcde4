/* The listen backlog: enlarge a small one, say what the kernel really applied, and notice when a
 * listener's accept queue runs full (the kernel then drops SYNs and final ACKs without a word). */
#pragma once
#include "layout.h"
#include <stdint.h>

/* What listen() will ask of the kernel, and why. */
struct listen_plan {
	int requested; /* the program's backlog */
	int asked;     /* what the real listen() gets: never lower than requested */
	int target;    /* the policy's backlog (somaxconn for "max"); 0 when the policy does not apply */
};

/* Before listen(fd, requested): the backlog to ask for under TCPRARE_BACKLOG. */
struct listen_plan backlog_plan(int fd, int requested);
/* After a successful listen(): reads back the backlog the kernel applied and logs what happened. */
void backlog_report(int fd, const struct listen_plan *plan);
/* After accept() took a connection from a tracked listener, once per clock tick at most
 * (fdstate_track_accepted): was the queue full? */
COLD void backlog_check_queue(int listener);
/* ListenOverflows of this network namespace since this process first listened; -1 if it never did. */
long long backlog_netns_overflows(void);
/* In a forked child: its summary reports the overflows only from its own first listen() on. */
void backlog_after_fork_child(void);
