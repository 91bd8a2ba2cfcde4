/* harden_daemon: a daemoniser that closes every descriptor number up to RLIMIT_NOFILE at startup, as
 * Stevens' daemon_init and many old servers do (for i = open_max - 1 down to 0: close(i)), reopens
 * 0, 1 and 2 on /dev/null, then serves. The library's log file must survive the loop (its close is
 * refused with EBADF, as for a number that is not open), and the program must never meet a
 * descriptor it did not open, or lose one it did.
 *
 *   harden_daemon -o REPORT
 * REPORT is opened after the loop (the program's own stdout is gone by then). It gets:
 *   loop open_before=N closed=C refused=R other_errors=E
 *       N numbers were open before the loop; C of them closed (0); R of them refused with EBADF;
 *       E closes failed with anything but EBADF. Then one line "refused FD TARGET" per refused one.
 *   reopened 0 1 2 report=3     the numbers the program's own opens got afterwards
 *   served eof=E reset=R errors=X
 *       three connections, in this process, whose server answers 100 bytes and closes with the
 *       client's 1000-byte request unread (a lingering close with TCPRARE_LINGER=on); how the
 *       clients' reads ended, and how many of the program's calls failed (each named in a line
 *       "error CALL: ERRNO")
 * alarm(20) bounds it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "socket_count.h"

#define MAX_SEEN 64
#define PAIRS 3

static int report = -1, errors;
static char report_text[8192];
static size_t report_len;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(report_text + report_len, sizeof(report_text) - report_len, fmt, ap);
	va_end(ap);
	if (n > 0 && report_len + (size_t)n < sizeof(report_text))
		report_len += (size_t)n;
}

static void error(const char *call)
{
	say("error %s: %s\n", call, strerror(errno));
	errors++;
}

struct seen {
	int fd;
	char target[256];
};

/* The open descriptors and what they name, before the loop closes them. */
static int snapshot(struct seen *seen)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d)) && n < MAX_SEEN;) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		char path[300];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, seen[n].target, sizeof(seen[n].target) - 1);
		seen[n].target[len > 0 ? len : 0] = '\0';
		seen[n++].fd = atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

/* for (i = open_max - 1; i >= 0; i--) close(i), and what became of the numbers that were open. */
static void close_everything(const char *name)
{
	struct seen seen[MAX_SEEN];
	int n = snapshot(seen), closed = 0, refused = 0, other = 0;
	static char refused_lines[2048];
	size_t used = 0;
	long open_max = sysconf(_SC_OPEN_MAX);
	for (long fd = open_max - 1; fd >= 0; fd--) {
		int was_open = -1;
		for (int i = 0; i < n; i++)
			if (seen[i].fd == fd)
				was_open = i;
		int rc = close((int)fd);
		if (rc == 0 && was_open >= 0)
			closed++;
		else if (rc == 0)
			other++; /* closed a number that was not open: opened meanwhile by someone else */
		else if (errno != EBADF)
			other++;
		else if (was_open >= 0) {
			refused++;
			used += (size_t)snprintf(refused_lines + used, sizeof(refused_lines) - used, "refused %ld %s\n", fd,
						 seen[was_open].target);
		}
	}
	say("%s open_before=%d closed=%d refused=%d other_errors=%d\n", name, n, closed, refused, other);
	say("%s", refused_lines);
	refused_lines[0] = '\0';
}

int main(int argc, char **argv)
{
	const char *report_path = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "o:")) != -1) {
		if (opt == 'o')
			report_path = optarg;
		else
			return 2;
	}
	if (!report_path)
		return 2;
	alarm(20);
	signal(SIGPIPE, SIG_IGN);

	close_everything("loop");
	int fds[3];
	for (int i = 0; i < 3; i++)
		fds[i] = open("/dev/null", O_RDWR);
	report = open(report_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	say("reopened %d %d %d report=%d\n", fds[0], fds[1], fds[2], report);

	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, len) != 0 || listen(listener, 8) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
		error("listener");
	int clients[PAIRS];
	char request[1000], answer[100];
	memset(request, 'q', sizeof(request));
	memset(answer, 'a', sizeof(answer));
	for (int i = 0; i < PAIRS; i++) {
		int server = -1, queued = 0;
		clients[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (clients[i] < 0 || connect(clients[i], (struct sockaddr *)&addr, len) != 0)
			error("connect");
		else if (send(clients[i], request, sizeof(request), 0) != (ssize_t)sizeof(request))
			error("send");
		else if ((server = accept(listener, NULL, NULL)) < 0)
			error("accept");
		else if (write(server, answer, sizeof(answer)) != (ssize_t)sizeof(answer))
			error("write");
		for (int t = 0; server >= 0 && t < 100 && ioctl(server, FIONREAD, &queued) == 0 && queued < 1000; t++)
			pause_ms(10);
		if (server >= 0 && close(server) != 0)
			error("close");
	}
	int eof = 0, reset = 0;
	for (int i = 0; i < PAIRS; i++) {
		char buf[4096];
		ssize_t n;
		struct pollfd p = {.fd = clients[i], .events = POLLIN};
		while ((n = poll(&p, 1, 3000)) == 1 && (n = read(clients[i], buf, sizeof(buf))) > 0)
			;
		if (n == 0)
			eof++;
		else if (n < 0 && errno == ECONNRESET)
			reset++;
		else
			error("client read");
		if (close(clients[i]) != 0)
			error("close client");
	}
	if (close(listener) != 0)
		error("close listener");
	say("served eof=%d reset=%d errors=%d\n", eof, reset, errors);
	return report >= 0 && write(report, report_text, report_len) == (ssize_t)report_len ? 0 : 1;
}
