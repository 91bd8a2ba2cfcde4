/* Lingering close: close() on a connected TCP socket becomes shutdown(SHUT_WR), a drain in the
 * background until the peer's EOF or a time limit, then the real close. The kernel would otherwise
 * answer unread or still arriving input with RST, and discard what the peer has not yet received. */
#pragma once
#include "config.h"
#include "fdstate.h"
#include "layout.h"
#include "vfork.h"

#include <stdbool.h>

/* Does close(fd) go through the linger policy at all? Inline: for anything but a tracked TCP socket
 * (or with TCPRARE_LINGER=off) a close costs one load more. */
static inline bool linger_watches(int fd)
{
	return config.linger != MODE_OFF && fdstate_is_tracked(fd);
}

/* glibc's (2.32 and later): true until a second thread is first made, false from then on. musl has
 * none: there a process counts as multi-threaded. A thread the program makes with clone() itself,
 * sharing the descriptor table, glibc does not count: linger_note_threads() says so. */
extern char __libc_single_threaded __attribute__((weak));
extern bool linger_unseen_threads;
static inline bool linger_single_threaded(void)
{
	return &__libc_single_threaded && __libc_single_threaded &&
	       !__atomic_load_n(&linger_unseen_threads, __ATOMIC_RELAXED);
}
static inline void linger_note_threads(void)
{
	__atomic_store_n(&linger_unseen_threads, true, __ATOMIC_RELAXED);
}

/* A write on a tracked socket (its entry e) enters the kernel: with lingering on it is counted until
 * its scope ends, so that a close from another thread meanwhile is a plain one. The kernel keeps the
 * socket open for that write and sends everything it writes; a shutdown() would cut it short. With
 * one thread, no close can come while a write is in the kernel. Never in a vfork child (the
 * caller's part): the count is in its parent's memory, and the child may die mid-write. */
static inline struct write_token linger_write_starts(struct fd_entry *e)
{
	return config.linger == MODE_ON && !linger_single_threaded() ? fdstate_write_starts(e)
								     : (struct write_token){NULL, 0};
}
static inline void linger_write_ends(struct write_token *writing)
{
	fdstate_write_ends(*writing);
}
/* On the variable holding linger_write_starts()'s result: the count ends as the write's scope does. */
#define LINGER_COUNTED_WRITE __attribute__((cleanup(linger_write_ends), unused)) /* used by its cleanup alone */

/* The drain thread starts when a socket first lingers, not before: a second thread makes glibc wrap
 * every cancellable system call in two compare-and-swaps from then on, for good (docs/PERFORMANCE.md,
 * row 2), which a program that never lingers should not pay. Never in close(), which may run in a
 * signal handler: close() leaves the socket in its slot and sets linger_wanted; the program's next
 * call that waits (poll, select, epoll_wait, the sleeps and their kin), connects, accepts, or reads a
 * socket starts the thread, and so does exit(). */
extern bool linger_wanted;
COLD void linger_start_waiting(void);
static inline void linger_start_wanted(void)
{
	if (__builtin_expect(__atomic_load_n(&linger_wanted, __ATOMIC_RELAXED), 0))
		linger_start_waiting();
}

/* After connect() or accept() made a connection: in a process that already has several threads (or
 * may have, under musl; not a forked child that has made none), the drain thread costs nothing more,
 * and starts at once. */
void linger_prepare(void);
/* After the program made a thread, if it has had a TCP socket: likewise. A close that lingers in a
 * worker may otherwise find no call of the program's that starts it (a server's main thread blocked
 * in accept(), its workers waiting on a condition variable, which no hook sees). */
void linger_note_program_thread(void);

/* For close(fd) on a watched fd, whose entry is e. True: the socket now lingers in the background and the program's
 * number has been released (close() returns 0). False: the caller closes fd as usual (in observe
 * mode, after a log line if that close will send RST). */
bool linger_close(int fd, struct fd_entry *e);

/* For a call other than close() that takes the program's last descriptor of a socket away: dup2() or
 * dup3() over it, fclose() or freopen() of a FILE made on it. release(call) makes the call; if fd is
 * a watched socket, its close then lingers, or logs, just as close(fd) would have. Returns what
 * release returned, errno as it left it; fd is as the call left it (free, or another file's). */
int linger_drop(int fd, int (*release)(void *call), void *call);

/* Is fd one of the library's lingering copies? Then the program never opened that number, and its
 * close() or dup() gets EBADF, as on an unused number (daemonisers close every number at start). */
bool linger_holds(int fd);

/* Before the program's shutdown(fd, how): does a client give up a download? One that does so by
 * shutdown() and then close() (the JVM's Socket.close() does both) is seen as one only while its
 * FIN is not out yet; the caller notes it once the shutdown succeeded (fdstate_note_gave_up). */
bool linger_gives_up_at_shutdown(int fd, int how);

/* The program is installing a seccomp filter (seccomp.c): the drain thread ends every lingering
 * socket and itself now, while its system calls are still allowed, and nothing starts it again. */
void linger_stand_down(void);

/* In a forked child: the drain thread does not exist here, and the child owes nothing to the
 * parent's lingering sockets; their copies are closed. */
void linger_after_fork_child(void);
/* At exit: gives the sockets still lingering a last, bounded chance to finish. */
void linger_finish(void);
/* Quiet lingers (the program had shut the socket down and left nothing unread) that ended with
 * nothing drained: they changed nothing on the wire, and have no line of their own, only this count
 * in the exit summary (linger_quiet). */
uint64_t linger_quiet_count(void);
