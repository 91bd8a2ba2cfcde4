#include "closewait.h"
#include "config.h"
#include "fdstate.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#ifndef POLLRDHUP
#define POLLRDHUP 0x2000
#endif

/* Whose writes are guarded. A peer that shut down only its sending side and still reads looks the
 * same from here as one that closed (CLOSE_WAIT either way), and a server answering such a client
 * must get its whole response through, however long the client took to send its request. The
 * seed's loss is a client's: so by default only sockets this process connected are guarded;
 * TCPRARE_CLOSEWAIT_SCOPE=all adds accepted, inherited and received ones. A client that read EOF,
 * or shut down its reading side, knows only that its server stopped sending, not that it still
 * reads (netcat reads the FIN, shuts down reading and writes its next line): the quiet before the
 * FIN tells, as for any other. A server that read its client's EOF has met the half-close idiom
 * (HTTP/1.0 clients, nc -N: "that was my request"), which a slow uploader may send after a pause:
 * it answers, never interfered with. After its own shutdown(SHUT_WR) the kernel fails its writes
 * itself. */
static bool in_scope(const struct fd_facts *f)
{
	if (f->flags & FLAG_SHUT_WR)
		return false;
	if (f->origin == FD_CONNECTED)
		return true;
	return config.closewait_scope_all && !(f->flags & (FLAG_READ_EOF | FLAG_SHUT_RD)) &&
	       f->origin != FD_LISTENING && f->origin != FD_CREATED;
}

/* Did the peer close this connection because it was idle, so that a write now would draw RST and
 * be lost? From here a peer that closed and one that only shut down its sending side and still reads
 * look the same (CLOSE_WAIT either way), but they differ in when the FIN came. A peer that half-closes
 * does so as part of the conversation: with its answer (nginx, Apache and lighttpd, after an early
 * reply to an upload), or at once (a sink such as socat from a file). A peer closing an idle
 * connection does so after its timeout, with nothing sent either way in between. So the FIN counts
 * only if the connection had been quiet both ways for at least TCPRARE_CLOSEWAIT_IDLE_MS before it:
 * TCP_INFO gives the time since the last data each way (a bare FIN is not data), and since the last
 * segment from the peer: the FIN, unless the peer has since acknowledged data we sent after it, and
 * so proved that it still reads (then the quiet measured is only a round trip). Data the program has
 * not read yet does not break the quiet: it is what the peer said as it closed (SMTP's and FTP's
 * "421 timeout", an HTTP 408), as far as the program knows; then only our own last data counts.
 * *quiet_ms is that quiet time, for the log: it tells the peer's idle timeout.
 *
 * poll's POLLRDHUP is cheap and right even with unread data queued before the FIN, but it also
 * reports our own shutdown(SHUT_RD), perhaps made through another descriptor or process sharing the
 * socket: TCP_INFO's state confirms it, and proves the descriptor is still TCP. A pending error
 * (POLLERR, or POLLHUP after RST) makes the kernel fail the write itself: nothing is lost. */
static bool peer_closed_idle(int fd, uint32_t *quiet_ms)
{
	int saved = errno;
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};
	struct tcp_info info;
	socklen_t len = sizeof(info);
	int unread = 0;
	bool closed = poll(&p, 1, 0) == 1 && (p.revents & POLLRDHUP) &&
		      !(p.revents & (POLLERR | POLLHUP | POLLNVAL)) &&
		      getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 && info.tcpi_state == TCP_CLOSE_WAIT &&
		      ioctl(fd, FIONREAD, &unread) == 0;
	errno = saved;
	if (!closed)
		return false;
	/* "ms ago": the smaller, the later */
	uint32_t last_data = unread == 0 && info.tcpi_last_data_recv < info.tcpi_last_data_sent
				     ? info.tcpi_last_data_recv
				     : info.tcpi_last_data_sent;
	if (last_data < info.tcpi_last_ack_recv) /* data sent since the peer's last segment: in flight */
		return false;
	*quiet_ms = last_data - info.tcpi_last_ack_recv;
	return *quiet_ms >= config.closewait_idle_ms;
}

static size_t iov_bytes(const struct iovec *iov, size_t n)
{
	size_t total = 0;
	if (!iov || n > IOV_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		total += iov[i].iov_len;
	return total;
}

static size_t bytes_of(const struct write_size *w)
{
	size_t total = w->len + iov_bytes(w->iov, w->iovcnt < 0 ? IOV_MAX + 1 : (size_t)w->iovcnt);
	if (w->msg)
		total += iov_bytes(w->msg->msg_iov, w->msg->msg_iovlen);
	for (unsigned int i = 0; w->msgs && i < w->nmsgs && i < UIO_MAXIOV; i++)
		total += iov_bytes(w->msgs[i].msg_hdr.msg_iov, w->msgs[i].msg_hdr.msg_iovlen);
	if (w->count)
		total += w->count(w->what);
	return total;
}

bool closewait_refuses(int fd, struct write_note note, int flags, const struct write_size *size)
{
	struct fd_facts facts;
	uint32_t quiet_ms = 0;
	if (!fdstate_get(fd, &facts) || !in_scope(&facts))
		return false;
	if (!(facts.flags & FLAG_PEER_CLOSED) && !peer_closed_idle(fd, &quiet_ms))
		return false;
	/* Before the fact sticks, and before acting on it: glibc may have closed our socket behind our
	 * back (fclose), and the number may name another file by now. */
	if (!fdstate_still_same(fd)) {
		fdstate_forget(fd);
		return false;
	}
	fdstate_note_peer_closed(fd);
	size_t bytes = bytes_of(size);
	if (bytes == 0 || !config_ports_cover(fd)) /* a write of nothing sends nothing, as the kernel returns 0 */
		return false;

	enum log_event event = config.closewait == MODE_OBSERVE ? EV_CLOSEWAIT_OBSERVED : EV_CLOSEWAIT_BLOCKED;
	LOG_EVENT(event, fd, FIELD_NUM("bytes", bytes), FIELD_NUM("idle_ms", note.idle_ms),
		  FIELD_NUM("quiet_ms", quiet_ms));
	if (config.closewait == MODE_OBSERVE)
		return false;
	if (!(flags & MSG_NOSIGNAL))
		raise(SIGPIPE); /* thread-directed, like the kernel's */
	errno = EPIPE;
	return true;
}
