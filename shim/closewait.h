/* The CLOSE_WAIT guard: refuse the write that the kernel would accept and the peer would answer
 * with RST, so that the program's own error path runs instead of the data vanishing. */
#pragma once
#include "config.h"
#include "fdstate.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* What a write carries, for the log. It is counted only when a write is refused: the kernel has not
 * yet checked the caller's buffers, so the pass-through path must not read them. */
struct write_size {
	size_t len;                 /* write, send, sendto, sendfile */
	const struct iovec *iov;    /* writev */
	int iovcnt;
	const struct msghdr *msg;   /* sendmsg */
	const struct mmsghdr *msgs; /* sendmmsg */
	unsigned int nmsgs;
	size_t (*count)(const void *what); /* stdio, dprintf: counted only then, as a format must be run */
	const void *what;
};

/* Does the guard look at writes on fd at all? Inline and first in every write hook, so that a write
 * to anything but a tracked TCP socket costs two loads, and its size record is never even built:
 *	if (closewait_watches(fd) && closewait_refuses(fd, flags, &(struct write_size){...}))  */
static inline bool closewait_watches(int fd)
{
	return config.closewait != MODE_OFF && fdstate_is_tracked(fd);
}

/* True if the write on a watched fd must fail; then errno is EPIPE and SIGPIPE has been raised on
 * this thread unless flags has MSG_NOSIGNAL, exactly as the kernel does one write later.
 * False leaves errno untouched. */
bool closewait_refuses(int fd, int flags, const struct write_size *size);
/* The same for a stdio call on a stream of fd's, which may only fill the stream's buffer: it does
 * not record a write (see fdstate_peek_write()); SIGPIPE is raised when it refuses. */
bool closewait_refuses_buffered(int fd, const struct write_size *size);
