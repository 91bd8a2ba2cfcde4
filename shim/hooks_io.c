/* Hooks on the data path. Writes on a tracked TCP socket ask the CLOSE_WAIT guard first, and with
 * lingering on are counted while in the kernel; reads note EOF, so that the guard knows when the
 * program itself has seen the peer finish. Any other descriptor costs one table lookup and a jump.
 * Nothing here allocates, locks or logs on the pass-through path, and errno is as libc left it. */
#include "libc_names.h" /* first */

#include "fdstate.h"
#include "hooks.h"
#include "layout.h"
#include "real.h"
#include "vfork.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

/* Called only after the kernel accepted the buffers (a read returned 0). */
static bool iov_has_room(const struct iovec *iov, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (iov[i].iov_len)
			return true;
	return false;
}

/* A read of 0 bytes into room for some is EOF: the program now knows the peer is done sending. What a
 * read brought, and whether it was a kilobyte or more (the peer sends in bulk, and may have more on
 * its way: an upload), tell the lingering close what the kernel's clock cannot (linger.c). flags: a
 * recv's; MSG_PEEK leaves the data in the socket, and MSG_ERRQUEUE reads the socket's error queue
 * (timestamps, zerocopy completions), not its data. A vfork child's number may name another socket
 * than the parent's: it notes nothing (vfork.h). */
static HOT ssize_t note_read(struct fd_entry *e, int fd, ssize_t got, bool had_room, int flags)
{
	if (got < 0 || (flags & MSG_ERRQUEUE) || !e || in_vfork_child())
		return got;
	if (got == 0 && had_room)
		fdstate_note_read_eof(fd);
	else if (got > 0)
		fdstate_note_read(e, (size_t)got, !(flags & MSG_PEEK));
	return got;
}

static ssize_t note_readv(struct fd_entry *e, int fd, const struct iovec *iov, int n, ssize_t got)
{
	return note_read(e, fd, got, got == 0 && iov_has_room(iov, (size_t)n), 0);
}

/* Descriptors passed with SCM_RIGHTS: sent ones are now held by another process too, received ones
 * arrive already shared. */
static void note_passed_fds(const struct msghdr *msg, bool received)
{
	if (!msg || msg->msg_controllen == 0 || in_vfork_child())
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
			continue;
		const int *fds = (const int *)CMSG_DATA(c);
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			if (received)
				fdstate_adopt(fds[i], FD_RECEIVED);
			else
				fdstate_mark_shared(fds[i]);
		}
	}
}

/* Each hook on the data path: a descriptor the table does not know (a file, a pipe, a terminal, a
 * socket that is not TCP) goes straight to libc, a tail call with no frame of its own; a tracked
 * socket goes out of line, to NAME_tracked, whose body is TRACKED, with its table entry in hand as
 * `entry`. Split so because GCC does not shrink-wrap: with the tracked path inline, every untracked
 * call paid its prologue and epilogue. */
#define PARAMETERS(...) __VA_ARGS__
#define HOOK(type, name, params, args, fd, tracked)                                                    \
	static HOT __attribute__((noinline)) type name##_tracked(struct fd_entry *entry, PARAMETERS params) \
	{                                                                                             \
		return tracked;                                                                       \
	}                                                                                             \
	INTERPOSED HOT type name params                                                               \
	{                                                                                             \
		struct fd_entry *entry = fdstate_entry(fd);                                           \
		return entry ? name##_tracked(entry, PARAMETERS args) : real.name args;              \
	}

/* --- reads --- */
/* A read on a socket may wait for its peer, who may wait for the FIN of a socket that lingers:
 * each starts the drain thread first if a close asked for it (linger.h). */

HOOK(ssize_t, read, (int fd, void *buf, size_t n), (fd, buf, n), fd,
     (linger_start_wanted(), note_read(entry, fd, real.read(fd, buf, n), n > 0, 0)))

HOOK(ssize_t, readv, (int fd, const struct iovec *iov, int n), (fd, iov, n), fd,
     (linger_start_wanted(), note_readv(entry, fd, iov, n, real.readv(fd, iov, n))))

HOOK(ssize_t, recv, (int fd, void *buf, size_t n, int flags), (fd, buf, n, flags), fd,
     (linger_start_wanted(), note_read(entry, fd, real.recv(fd, buf, n, flags), n > 0, flags)))

HOOK(ssize_t, recvfrom, (int fd, void *buf, size_t n, int flags, sockaddr_arg addr, socklen_t *len),
     (fd, buf, n, flags, addr, len), fd,
     (linger_start_wanted(), note_read(entry, fd, real.recvfrom(fd, buf, n, flags, addr, len), n > 0, flags)))

/* Not split: descriptors passed over any socket (a UNIX one, mostly) are noted. */
INTERPOSED ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	linger_start_wanted();
	ssize_t got = real.recvmsg(fd, msg, flags);
	if (got >= 0)
		note_passed_fds(msg, true);
	return note_read(fdstate_entry(fd), fd, got, got == 0 && iov_has_room(msg->msg_iov, msg->msg_iovlen), flags);
}

#ifdef __GLIBC__
/* _FORTIFY_SOURCE builds (all of Debian) call these instead of read/recv/recvfrom. */
extern void __chk_fail(void) __attribute__((noreturn));

INTERPOSED ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return read(fd, buf, n);
}

INTERPOSED ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (n > buflen)
		__chk_fail();
	return recv(fd, buf, n, flags);
}

INTERPOSED ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, sockaddr_arg addr,
				  socklen_t *len)
{
	if (n > buflen)
		__chk_fail();
	return recvfrom(fd, buf, n, flags, addr, len);
}
#endif

/* --- writes: each asks the guard, then writes --- */

HOOK(ssize_t, write, (int fd, const void *buf, size_t n), (fd, buf, n), fd,
     GUARDED_WRITE_ON(entry, fd, 0, real.write(fd, buf, n), .len = n))

HOOK(ssize_t, writev, (int fd, const struct iovec *iov, int n), (fd, iov, n), fd,
     GUARDED_WRITE_ON(entry, fd, 0, real.writev(fd, iov, n), .iov = iov, .iovcnt = n))

HOOK(ssize_t, send, (int fd, const void *buf, size_t n, int flags), (fd, buf, n, flags), fd,
     GUARDED_WRITE_ON(entry, fd, flags, real.send(fd, buf, n, flags), .len = n))

/* sendto() and sendmsg() with MSG_FASTOPEN connect an unconnected socket as they send (TCP Fast
 * Open, as curl --tcp-fastopen does): afterwards it is a connection of ours, as after connect(). */
static ssize_t note_fastopen(int fd, int flags, ssize_t sent)
{
	if ((flags & MSG_FASTOPEN) && (sent >= 0 || errno == EINPROGRESS) && !in_vfork_child())
		hooks_note_connected(fd);
	return sent;
}

HOOK(ssize_t, sendto, (int fd, const void *buf, size_t n, int flags, const_sockaddr_arg addr, socklen_t len),
     (fd, buf, n, flags, addr, len), fd,
     note_fastopen(fd, flags, GUARDED_WRITE_ON(entry, fd, flags, real.sendto(fd, buf, n, flags, addr, len), .len = n)))

/* Not split: a socket it reads (in_fd may be one, since Linux 5.12) tells EOF and bulk as read() does. */
INTERPOSED ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	ssize_t sent = GUARDED_WRITE(out_fd, 0, real.sendfile(out_fd, in_fd, offset, count), .len = count);
	return note_read(fdstate_entry(in_fd), in_fd, sent, count > 0, 0);
}

/* Not split, as recvmsg: descriptors passed over any socket are noted. */
INTERPOSED ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t sent = GUARDED_WRITE(fd, flags, real.sendmsg(fd, msg, flags), .msg = msg);
	if (sent >= 0)
		note_passed_fds(msg, false);
	return note_fastopen(fd, flags, sent);
}

INTERPOSED int sendmmsg(int fd, struct mmsghdr *msgs, unsigned int n, sendmmsg_flags flags)
{
	int sent = GUARDED_WRITE(fd, (int)flags, real.sendmmsg(fd, msgs, n, flags), .msgs = msgs, .nmsgs = n);
	struct fd_entry *e = sent > 0 && !in_vfork_child() ? fdstate_entry(fd) : NULL;
	if (e) /* GUARDED_WRITE took the count of messages for bytes: it was more, say so */
		fdstate_note_wrote(e, SIZE_MAX);
	for (int i = 0; i < sent; i++)
		note_passed_fds(&msgs[i].msg_hdr, false);
	return sent;
}

#if defined(__GLIBC__) && defined(__LP64__)
/* On 64-bit glibc sendfile64 is the same call under another name, and programs built with
 * _FILE_OFFSET_BITS=64 link to it. */
INTERPOSED ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
	return sendfile(out_fd, in_fd, offset, count);
}
#endif

/* A proxy moves data from a pipe into a socket this way. Like sendfile() it raises SIGPIPE on a
 * broken connection; reading a socket with it, it tells EOF and bulk as read() does. */
INTERPOSED ssize_t splice(int in_fd, splice_off *in_off, int out_fd, splice_off *out_off, size_t len,
			  unsigned int flags)
{
	return note_read(fdstate_entry(in_fd), in_fd, GUARDED_WRITE(out_fd, 0, real.splice(in_fd, in_off, out_fd, out_off, len, flags), .len = len),
			 len > 0, 0);
}
