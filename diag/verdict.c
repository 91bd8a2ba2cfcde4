#include "verdict.h"
/* The library's own threshold for an idle connection: a FIN after this much quiet is an idle close,
 * which is when the guard acts. One constant, shared, so the doctor and the library judge alike. */
#include "../shim/config.h"

#include <stdio.h>
#include <string.h>

/* "850 ms", "12.3 s", "4 min" */
static void format_duration(uint32_t ms, char *out, size_t size)
{
	if (ms < 1000)
		snprintf(out, size, "%u ms", ms);
	else if (ms < 100000)
		snprintf(out, size, "%u.%u s", ms / 1000, ms % 1000 / 100);
	else if (ms < 3 * 3600 * 1000u)
		snprintf(out, size, "%u min", ms / 60000);
	else
		snprintf(out, size, "%u h", ms / 3600000);
}

/* A connection in CLOSE_WAIT: the peer has sent its FIN and the program has not closed its end.
 * A write now is accepted by the kernel and answered by the peer with RST: the data is lost, and only
 * the write after it fails. Whether it matters is the library's rule: was the connection quiet when the
 * peer closed it (an idle timeout, and a program that will write again), or did the close come with
 * the conversation (a reply, then a close)? tcp_info gives the time since the peer last sent data,
 * which is at least the quiet before its FIN. Unsent bytes are not a verdict of their own: after an
 * idle close they wait for the peer's RST, but after a half-close they are an answer on its way. */
void verdict_close_wait(const struct diag_socket *s, bool accepted, struct verdict *v)
{
	char quiet[32] = "", unread[64] = "", unsent[64] = "";
	bool idle = s->has_last_recv && s->last_recv_ms >= CLOSEWAIT_IDLE_MS_DEFAULT;
	if (s->has_last_recv)
		format_duration(s->last_recv_ms, quiet, sizeof(quiet));
	if (closewait_unread(s))
		snprintf(unread, sizeof(unread), "; %u bytes it sent are still unread", closewait_unread(s));
	if (s->wqueue)
		snprintf(unsent, sizeof(unsent), "; %u bytes written are not acknowledged",
			 s->wqueue);

	/* The guard's rule: an idle close, and a program that has not itself read the end. */
	v->finding = idle && !closewait_eof_read(s);
	v->setting = !v->finding ? NULL : accepted ? "TCPRARE_CLOSEWAIT=on TCPRARE_CLOSEWAIT_SCOPE=all" : "TCPRARE_CLOSEWAIT=on";
	if (closewait_eof_read(s))
		snprintf(v->text, sizeof(v->text),
			 "the program has read the peer's close (end of data) and still holds the connection%s%s%s",
			 s->has_last_recv ? "; the peer last sent " : "", quiet, s->has_last_recv ? " ago" : "");
	else if (idle)
		snprintf(v->text, sizeof(v->text),
			 "the peer closed, and has sent nothing for %s%s%s; the next write will be lost: run the program "
			 "under tcprare (%s%s)",
			 quiet, unread, unsent, v->setting, accepted ? ": the connection was accepted" : "");
	else if (s->has_last_recv)
		snprintf(v->text, sizeof(v->text),
			 "the peer last sent %s ago, then closed: a reply and a close, not an idle timeout%s%s", quiet,
			 unread, unsent);
	else
		snprintf(v->text, sizeof(v->text), "the peer closed%s%s", unread, unsent);
}

/* A listener: connections the kernel completed wait in the accept queue, which holds backlog + 1.
 * When it is full, Linux drops SYNs and ignores final ACKs; the client believes it is connected and
 * waits a second or more for a retransmission. Every such drop counts in the listener's sk_drops. */
void verdict_listener(const struct diag_socket *s, long somaxconn, struct verdict *v)
{
	uint32_t backlog = s->wqueue, queue = s->rqueue;
	bool dropped = s->has_drops && s->drops > 0;
	bool full = queue > 0 && (uint64_t)queue * 10 >= (uint64_t)backlog * 9;
	bool small = backlog < SMALL_BACKLOG && (somaxconn < 0 || backlog < (uint64_t)somaxconn);
	/* tcprare can raise a backlog to somaxconn, never beyond it */
	bool raisable = somaxconn < 0 || backlog < (uint64_t)somaxconn;
	char help[160];

	if (raisable && somaxconn >= 0)
		snprintf(help, sizeof(help), "tcprare raises the backlog to net.core.somaxconn, %ld (TCPRARE_BACKLOG=max)",
			 somaxconn);
	else if (raisable)
		snprintf(help, sizeof(help), "tcprare raises the backlog to net.core.somaxconn (TCPRARE_BACKLOG=max)");
	else
		snprintf(help, sizeof(help), "the backlog is already net.core.somaxconn: raise that sysctl "
					     "(tcprare cannot go beyond it)");
	v->finding = dropped || full || small;
	v->setting = !v->finding ? NULL : raisable ? "TCPRARE_BACKLOG=max" : "net.core.somaxconn";

	if (dropped)
		snprintf(v->text, sizeof(v->text),
			 "accept queue overflowed %u times (SYNs and final ACKs dropped; clients waited for "
			 "retransmissions)%s: %s",
			 s->drops, full ? ", and it is full now" : "", help);
	else if (full)
		snprintf(v->text, sizeof(v->text),
			 "the accept queue is %s (%u waiting, backlog %u): the program accepts more slowly than "
			 "clients arrive: %s",
			 queue > backlog ? "full" : "nearly full", queue, backlog, help);
	else if (small)
		snprintf(v->text, sizeof(v->text),
			 "a backlog of %u overflows under a burst of connects; nothing dropped yet: %s", backlog, help);
	else
		snprintf(v->text, sizeof(v->text), "nothing dropped");
}
