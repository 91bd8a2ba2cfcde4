/* Lingering close: close() on a connected TCP socket becomes shutdown(SHUT_WR), a drain in the
 * background until the peer's EOF or a time limit, then the real close. The kernel would otherwise
 * answer unread or still arriving input with RST, and discard what the peer has not yet received. */
#pragma once
#include "config.h"
#include "fdstate.h"
#include "vfork.h"

#include <stdbool.h>

/* Does close(fd) go through the linger policy at all? Inline: for anything but a tracked TCP socket
 * (or with TCPRARE_LINGER=off) a close costs one load more. */
static inline bool linger_watches(int fd)
{
	return config.linger != MODE_OFF && fdstate_is_tracked(fd);
}

/* A write on fd enters the kernel: with lingering on it is counted until its scope ends, so that
 * a close from another thread meanwhile is a plain one. The kernel keeps the socket open for that
 * write and sends everything it writes; a shutdown() would cut it short. */
static inline struct write_token linger_write_starts(int fd)
{
	/* Not in a vfork child: the count is in its parent's memory, and the child may die mid-write. */
	return config.linger == MODE_ON && !in_vfork_child() ? fdstate_write_starts(fd) : (struct write_token){NULL, 0};
}
static inline void linger_write_ends(struct write_token *writing)
{
	fdstate_write_ends(*writing);
}
/* On the variable holding linger_write_starts()'s result: the count ends as the write's scope does. */
#define LINGER_COUNTED_WRITE __attribute__((cleanup(linger_write_ends)))

/* After connect() or accept() made a connection: starts the drain thread, if lingering is on and it
 * is not running yet, so that close() never has to. */
void linger_prepare(void);

/* For close(fd) on a watched fd. True: the socket now lingers in the background and the program's
 * number has been released (close() returns 0). False: the caller closes fd as usual (in observe
 * mode, after a log line if that close will send RST). */
bool linger_close(int fd);

/* For a call other than close() that takes the program's last descriptor of a socket away: dup2() or
 * dup3() over it, fclose() or freopen() of a FILE made on it. release(call) makes the call; if fd is
 * a watched socket, its close then lingers, or logs, just as close(fd) would have. Returns what
 * release returned, errno as it left it; fd is as the call left it (free, or another file's). */
int linger_drop(int fd, int (*release)(void *call), void *call);

/* Is fd one of the library's lingering copies? Then the program never opened that number, and its
 * close() or dup() gets EBADF, as on an unused number (daemonisers close every number at start). */
bool linger_holds(int fd);

/* In a forked child: the drain thread does not exist here, and the child owes nothing to the
 * parent's lingering sockets; their copies are closed. */
void linger_after_fork_child(void);
/* At exit: gives the sockets still lingering a last, bounded chance to finish. */
void linger_finish(void);
