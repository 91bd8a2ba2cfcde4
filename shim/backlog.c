#include "backlog.h"
#include "config.h"
#include "fdstate.h"
#include "log.h"
#include "real.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SOMAXCONN_UNKNOWN 4096 /* Linux's default since 5.4; the kernel clamps to its own anyway */

/* ListenOverflows when this process first listened, +1 (0: not yet read). */
static long long overflows_at_first_listen;

/* Reads a small /proc file into buf (NUL-terminated) with the real read and close. */
static bool read_proc(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	size_t len = 0;
	ssize_t n;
	while (len < size - 1 && (n = real.read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	real.close(fd);
	buf[len] = '\0';
	return len > 0;
}

/* net.core.somaxconn of the process's network namespace: the kernel's ceiling for any backlog. */
static int somaxconn(void)
{
	char buf[32];
	long value = 0;
	if (!read_proc("/proc/sys/net/core/somaxconn", buf, sizeof(buf)))
		return SOMAXCONN_UNKNOWN;
	for (char *p = buf; *p >= '0' && *p <= '9' && value < 0x7fffffff; p++)
		value = value * 10 + (*p - '0');
	return value > 0 ? (int)value : SOMAXCONN_UNKNOWN;
}

/* TcpExt ListenOverflows from /proc/net/netstat: a line of names, then a line of values. -1 if absent. */
static long long read_listen_overflows(void)
{
	char buf[8192];
	if (!read_proc("/proc/net/netstat", buf, sizeof(buf)))
		return -1;
	char *names = strstr(buf, "TcpExt:");
	char *values = names ? strstr(names + 1, "TcpExt:") : NULL;
	if (!values)
		return -1;
	int column = 0;
	bool found = false;
	for (char *p = names; p < values && *p != '\n' && !found; p++) {
		if (*p != ' ')
			continue;
		column++;
		found = !strncmp(p + 1, "ListenOverflows", 15) && (p[16] == ' ' || p[16] == '\n');
	}
	if (!found)
		return -1;
	for (char *p = values; *p && *p != '\n'; p++) {
		if (*p == ' ' && --column == 0)
			return strtoll(p + 1, NULL, 10);
	}
	return -1;
}

struct listen_plan backlog_plan(int fd, int requested)
{
	struct listen_plan plan = {.requested = requested, .asked = requested};
	if (config.backlog == BACKLOG_OFF || !fdstate_is_tracked(fd) || !config_ports_cover(fd))
		return plan;
	int saved = errno;
	plan.target = config.backlog == BACKLOG_FIXED ? config.backlog_fixed : somaxconn();
	/* A negative backlog already means "the kernel's maximum". */
	if (config.backlog != BACKLOG_OBSERVE && requested >= 0 && requested < plan.target)
		plan.asked = plan.target;
	errno = saved;
	return plan;
}

/* The backlog the kernel applied: for a listener, TCP_INFO's tcpi_sacked is sk_max_ack_backlog and
 * tcpi_unacked the accept queue's length (read without the socket lock). */
static bool listener_info(int fd, struct tcp_info *info)
{
	socklen_t len = sizeof(*info);
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, &len) == 0 && info->tcpi_state == TCP_LISTEN;
}

void backlog_report(int fd, const struct listen_plan *plan)
{
	struct tcp_info info;
	if (!plan->target)
		return;
	int saved = errno;
	if (!__atomic_load_n(&overflows_at_first_listen, __ATOMIC_RELAXED))
		__atomic_store_n(&overflows_at_first_listen, read_listen_overflows() + 1, __ATOMIC_RELAXED);
	if (listener_info(fd, &info)) {
		int effective = (int)info.tcpi_sacked;
		/* INT_MAX, like a negative backlog, asks for the kernel's maximum, and gets it */
		if (plan->asked >= 0 && plan->asked != INT_MAX && effective < plan->asked)
			LOG_EVENT(EV_BACKLOG_TRUNCATED, fd, FIELD_NUM("requested", plan->requested),
				  FIELD_NUM("asked", plan->asked), FIELD_NUM("effective", effective),
				  FIELD_TEXT("sysctl", "net.core.somaxconn"));
		else if (plan->asked != plan->requested)
			LOG_EVENT(EV_BACKLOG_RAISED, fd, FIELD_NUM("requested", plan->requested),
				  FIELD_NUM("asked", plan->asked), FIELD_NUM("effective", effective));
		else if (config.backlog == BACKLOG_OBSERVE && plan->requested >= 0 && plan->requested < plan->target)
			LOG_EVENT(EV_BACKLOG_OBSERVED, fd, FIELD_NUM("requested", plan->requested),
				  FIELD_NUM("would_ask", plan->target), FIELD_NUM("effective", effective));
	}
	errno = saved;
}

/* The queue holds backlog + 1 connections. The accept that just returned took one, so if those still
 * waiting fill it to the backlog, it was full: SYNs and final ACKs were being dropped meanwhile. A
 * full queue lasts while the program catches up, so one look per clock tick is enough, and keeps a
 * busy accept loop from paying a getsockopt per connection; the kernel's ListenOverflows, in the
 * summary, counts every drop. */
void backlog_check_queue(int listener)
{
	struct tcp_info info;
	if (config.backlog == BACKLOG_OFF || !config_ports_cover(listener))
		return;
	int saved = errno;
	if (listener_info(listener, &info) && info.tcpi_unacked >= info.tcpi_sacked) {
		uint32_t times = fdstate_note_queue_full(listener);
		LOG_EVENT(EV_ACCEPT_QUEUE_FULL, listener, FIELD_NUM("waiting", info.tcpi_unacked),
			  FIELD_NUM("backlog", info.tcpi_sacked), FIELD_NUM("times", times));
	}
	errno = saved;
}

void backlog_after_fork_child(void)
{
	/* The child has not listened: the namespace's overflows since the parent did are the parent's
	 * to report, and a child that listens counts from then on. */
	__atomic_store_n(&overflows_at_first_listen, 0, __ATOMIC_RELAXED);
}

long long backlog_netns_overflows(void)
{
	long long first = __atomic_load_n(&overflows_at_first_listen, __ATOMIC_RELAXED) - 1;
	long long now = first >= 0 ? read_listen_overflows() : -1;
	return now >= first && first >= 0 ? now - first : -1;
}
