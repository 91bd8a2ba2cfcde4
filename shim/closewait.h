/* The CLOSE_WAIT guard: refuse the write that the kernel would accept and the peer would answer
 * with RST, so that the program's own error path runs instead of the data vanishing. */
#pragma once
#include "config.h"
#include "fdstate.h"
#include "layout.h"

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

/* Can the guard ever judge a write on the socket whose entry is e? By default only on connections
 * this process made (see in_scope() in closewait.c): a server's writes on the sockets it accepted
 * pay no clock read. An origin changes only from FD_CREATED, before the socket's first write counts. */
static inline bool closewait_judges(struct fd_entry *e)
{
	return config.closewait != MODE_OFF &&
	       (fdstate_origin(e) == FD_CONNECTED || config.closewait_scope_all);
}

/* Is this write on a tracked socket (its entry e) one the guard must look at? Records the write's
 * time; yes only once the peer is known to have closed, or after a pause of TCPRARE_CLOSEWAIT_IDLE_MS:
 * a FIN counts only after the connection was quiet for that long (see closewait.c), so only a write
 * after at least as long a pause can meet one, and a busy stream pays a clock read. Inline: every
 * write on a tracked socket asks, and its size record is built only for a look:
 *	if (closewait_due(e, &note) && closewait_refuses(fd, note, flags, &(struct write_size){...}))  */
static inline bool closewait_due(struct fd_entry *e, struct write_note *note)
{
	if (!closewait_judges(e))
		return false;
	fdstate_note_write(e, note);
	return note->peer_closed || note->idle_ms >= config.closewait_idle_ms;
}

/* The same for a stdio call on a stream of the socket's, which may only fill the stream's buffer: it
 * records no write (see fdstate_peek_write()). */
static inline bool closewait_due_buffered(struct fd_entry *e, struct write_note *note)
{
	if (!closewait_judges(e))
		return false;
	fdstate_peek_write(e, note);
	return note->peer_closed || note->idle_ms >= config.closewait_idle_ms;
}

/* After closewait_due(): true if the write must fail; then errno is EPIPE and SIGPIPE has been raised
 * on this thread unless flags has MSG_NOSIGNAL, exactly as the kernel does one write later.
 * False leaves errno untouched. Not in a vfork child (see vfork.h): its writes pass as without the
 * library, as the log, its counters and rate limits are the parent's. */
COLD bool closewait_refuses(int fd, struct write_note note, int flags, const struct write_size *size);
