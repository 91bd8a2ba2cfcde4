/* The CLOSE_WAIT guard: refuse the write that the kernel would accept and the peer would answer
 * with RST, so that the program's own error path runs instead of the data vanishing. */
#pragma once
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
};

/* True if the write on fd must fail; then errno is EPIPE and SIGPIPE has been raised on this thread
 * unless flags has MSG_NOSIGNAL, exactly as the kernel does one write later.
 * False leaves errno untouched. */
bool closewait_refuses(int fd, int flags, const struct write_size *size);
