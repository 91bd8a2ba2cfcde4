/* Connections accepted, answered and closed, timed: what the accept-queue watch and the lingering
 * close cost a server. Only this process (the server) carries the library; the client is a separate
 * process that execs this program again without LD_PRELOAD or TCPRARE_*, so it is the same in both
 * arms of a comparison.
 *
 *   connloop accept N   accept N connections and close each at once. The client connects and
 *                       closes N times, at most WINDOW connections ahead of the server, so the
 *                       accept queue never fills (a full queue drops SYNs: a 1 s retransmission).
 *                       Prints "<wall_ns> <cpu_ns>" for the accept loop.
 *   connloop answer N   accept, read a small request, write a small answer, close; N times. The
 *                       client connects, sends the request, reads to EOF, closes, one at a time.
 *                       Prints "<wall_ns> <cpu_ns>" for the loop. The CPU time is the whole
 *                       server process's: the library's drain thread counts.
 *   connloop answer-ask N
 *                       as answer, and before each close the server asks the kernel what the
 *                       lingering close's decision asks after such an exchange: getsockopt(SO_MEMINFO)
 *                       (nothing unread, nothing unacknowledged?), and ioctl(SIOCOUTQNSD) if something
 *                       is unacknowledged (nothing unsent?). That decision's floor, run without the
 *                       library.
 *   connloop close N [FILE]
 *                       close() latency. The client opens N connections, sends a request on each
 *                       and keeps them all open; the server accepts them all, then closes them one
 *                       by one and times the close() call alone (CLOCK_MONOTONIC around it), on a socket that has
 *                       unread input, an answer sent and a peer still open: the close that lingers,
 *                       or without lingering, sends RST. Prints "<p50_ns> <p99_ns> <max_ns>"; FILE gets every
 *                       sample, one per line. Raises RLIMIT_NOFILE to its hard limit first: the
 *                       library lingers on at most a quarter of the soft limit.
 *   connloop scale N    N connections at once, answered and closed by the server with unread input: the client
 *                       opens N connections, sends a request on each and keeps them all open; the
 *                       server accepts them all, then closes them all, one after the other; the
 *                       client reads each to EOF (or a reset), closes it, and once it has closed
 *                       them all, says so. The server counts its socket descriptors (readlink of
 *                       /proc/self/fd) before it accepts, and again from the client's word on, until
 *                       they are back where they started: lingering, its sockets stay open in the
 *                       library until the client's FIN is drained.
 *                       Prints "<drain_ns> <close_loop_ns> <close_p99_ns> <sockets_before>
 *                       <sockets_after> <fds_before> <fds_after> <eofs> <resets>": the time from
 *                       the end of the last close() to the last socket gone, the time of the close
 *                       loop, the p99 of one close(), the socket descriptors and all descriptors
 *                       before and after, and how the client's N reads ended. Raises
 *                       RLIMIT_NOFILE to its hard limit first, and says if the library's default
 *                       linger cap (a quarter of it) is under N and TCPRARE_LINGER_MAX is not set.
 *
 * Setup and teardown are not timed. */
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ask.h"
#include "common.h"

#define WINDOW 256 /* accept mode: how far the client may run ahead of the server (backlog: 4096) */
#define STEP 32    /* accept mode: the server reports progress every STEP connections */

static const char request[] = "GET /bench HTTP/1.0\r\n\r\n";
static const char answer[] = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n";

extern char **environ;

static void read_exactly(int fd, void *buf, size_t n, const char *what)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r == 0) {
			errno = EPIPE;
			die(what);
		}
		if (r < 0 && errno != EINTR)
			die(what);
		got += r > 0 ? (size_t)r : 0;
	}
}

static void write_all(int fd, const void *buf, size_t n, const char *what)
{
	for (size_t put = 0; put < n;) {
		ssize_t w = write(fd, (const char *)buf + put, n - put);
		if (w < 0 && errno != EINTR)
			die(what);
		put += w > 0 ? (size_t)w : 0;
	}
}

/* --- the client: no library, blocking sockets --- */

static int connect_to(const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	while (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0)
		if (errno != EINTR)
			die("connect");
	return fd;
}

static int run_client(const char *mode, long count, int port, int control)
{
	bench_role = "connloop client";
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char byte = 0, buf[4096];
	if (strcmp(mode, "accept") == 0) {
		long acknowledged = 0;
		for (long i = 0; i < count; i++) {
			while (i - acknowledged * STEP >= WINDOW) {
				read_exactly(control, &byte, 1, "read progress");
				acknowledged++;
			}
			close(connect_to(&addr));
		}
	} else if (strncmp(mode, "answer", 6) == 0) {
		for (long i = 0; i < count; i++) {
			int fd = connect_to(&addr);
			write_all(fd, request, sizeof(request) - 1, "send the request");
			ssize_t got;
			while ((got = read(fd, buf, sizeof(buf))) != 0)
				if (got < 0 && errno != EINTR)
					die("read the answer");
			close(fd);
		}
	} else if (strcmp(mode, "scale") == 0) { /* open them all, then read each to its end and close it */
		int *fds = calloc((size_t)count, sizeof(*fds));
		if (!fds)
			die("calloc");
		for (long i = 0; i < count; i++) {
			fds[i] = connect_to(&addr);
			write_all(fds[i], request, sizeof(request) - 1, "send the request");
		}
		write_all(control, "r", 1, "say ready");
		long eofs = 0, resets = 0;
		for (long i = 0; i < count; i++) {
			ssize_t got;
			while ((got = read(fds[i], buf, sizeof(buf))) != 0) {
				if (got < 0 && errno == ECONNRESET) {
					resets++;
					break;
				}
				if (got < 0 && errno != EINTR)
					die("read to EOF");
			}
			eofs += got == 0;
			close(fds[i]);
		}
		free(fds);
		int n = snprintf(buf, sizeof(buf), "%ld %ld\n", eofs, resets);
		write_all(control, buf, (size_t)n, "report the ends");
	} else { /* close: open them all, then let the server close its ends, then close ours */
		int *fds = calloc((size_t)count, sizeof(*fds));
		if (!fds)
			die("calloc");
		for (long i = 0; i < count; i++) {
			fds[i] = connect_to(&addr);
			write_all(fds[i], request, sizeof(request) - 1, "send the request");
		}
		write_all(control, "r", 1, "say ready");
		read_exactly(control, &byte, 1, "wait for the server");
		for (long i = 0; i < count; i++)
			close(fds[i]);
		free(fds);
	}
	return 0;
}

/* The client runs without the library (and without its settings), whatever this process has. It is
 * the parent, the server its child: a server with a child of its own pays, in each lingering close,
 * for the look into /proc that tells whether the child holds the socket (process.h), which a server
 * without children, the usual event-loop server, does not. The client, once done, waits for the
 * server and exits with its status. Returns in the server. */
static void split_off_client(const char *self, const char *mode, long count, int port, int control)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 1, sizeof(*env));
	if (!env)
		die("calloc");
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0 && strncmp(environ[i], "TCPRARE_", 8) != 0)
			env[kept++] = environ[i];
	}
	char count_text[24], port_text[16], control_text[16];
	snprintf(count_text, sizeof(count_text), "%ld", count);
	snprintf(port_text, sizeof(port_text), "%d", port);
	snprintf(control_text, sizeof(control_text), "%d", control);
	pid_t parent = getpid(), pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) { /* the server: ends with its client, whatever becomes of it */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			die("follow the client");
		free(env);
		return;
	}
	execve(self, (char *[]){(char *)self, "--client", (char *)mode, count_text, port_text, control_text, NULL}, env);
	kill(pid, SIGKILL);
	die("exec the client");
}

/* The client's end: the server's exit status, once the client's part is done. */
static int wait_for_server(void)
{
	int status;
	if (waitpid(-1, &status, 0) < 0)
		die("wait for the server");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

/* --- the server: this process, with whatever library and settings it was given --- */

/* Scale mode: the client's last words, "<eofs> <resets>\n", sent after its last close(). */
static void read_report(int ctl, long *eofs, long *resets)
{
	char text[64];
	size_t got = 0;
	ssize_t n;
	while (got < sizeof(text) - 1 && (got == 0 || text[got - 1] != '\n') &&
	       (n = read(ctl, text + got, sizeof(text) - 1 - got)) != 0)
		if (n < 0 && errno != EINTR)
			die("read the client's report");
		else
			got += n > 0 ? (size_t)n : 0;
	text[got] = '\0';
	if (sscanf(text, "%ld %ld", eofs, resets) != 2) {
		fprintf(stderr, "connloop: no report from the client\n");
		exit(2);
	}
}

/* This process's descriptors: all of them, and how many are sockets (readlink is "socket:[inode]").
 * Sockets are counted only when all is at most sockets_if_under: reading 10,000 links costs
 * milliseconds, counting directory entries far less. */
static void count_fds(long *all, long *sockets, long sockets_if_under)
{
	DIR *dir = opendir("/proc/self/fd");
	if (!dir)
		die("/proc/self/fd");
	long n = 0;
	struct dirent *d;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	*all = n - 1; /* the directory's own descriptor */
	*sockets = -1;
	if (*all <= sockets_if_under) {
		rewinddir(dir);
		*sockets = 0;
		char link[64];
		while ((d = readdir(dir))) {
			if (d->d_name[0] == '.' || atoi(d->d_name) == dirfd(dir))
				continue;
			ssize_t len = readlinkat(dirfd(dir), d->d_name, link, sizeof(link) - 1);
			*sockets += len > 7 && strncmp(link, "socket:", 7) == 0;
		}
	}
	closedir(dir);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p% of the samples at or below it. */
static uint64_t percentile(const uint64_t *sorted, long n, int p)
{
	long rank = (n * p + 99) / 100;
	return sorted[rank > 0 ? rank - 1 : 0];
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "--client") == 0) {
		int failed = run_client(argv[2], parse_number(argv[3], 1, 1000000, "the count"),
					(int)parse_number(argv[4], 1, 65535, "the port"),
					(int)parse_number(argv[5], 0, INT_MAX, "the control descriptor"));
		return failed ? failed : wait_for_server();
	}
	if (argc < 3 || argc > 4 ||
	    (strcmp(argv[1], "accept") != 0 && strcmp(argv[1], "answer") != 0 && strcmp(argv[1], "answer-ask") != 0 &&
	     strcmp(argv[1], "close") != 0 && strcmp(argv[1], "scale") != 0) ||
	    (argc == 4 && strcmp(argv[1], "close") != 0)) {
		fprintf(stderr, "usage: connloop accept|answer|answer-ask|scale N\n       connloop close N [SAMPLES_FILE]\n");
		return 2;
	}
	const char *mode = argv[1];
	bool closing = strcmp(mode, "close") == 0, scaling = strcmp(mode, "scale") == 0;
	long count = parse_number(argv[2], 1, closing ? 8000 : scaling ? 100000 : 1000000, "the count");
	signal(SIGPIPE, SIG_IGN); /* the client may be gone before the last progress report */

	if (closing) { /* N lingering sockets here, N client sockets there */
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur / 4 < count + 16)) {
			fprintf(stderr, "connloop: close %ld needs RLIMIT_NOFILE of %ld (the library lingers on a quarter)\n",
				count, 4 * (count + 16));
			return 2;
		}
	}
	if (scaling) { /* N sockets here and N in the client; the library lingers on a quarter of the limit */
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < count + 64)) {
			fprintf(stderr, "connloop: scale %ld needs RLIMIT_NOFILE of %ld at least\n", count, count + 64);
			return 2;
		}
		if (!getenv("TCPRARE_LINGER_MAX") && rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur / 4 < count)
			fprintf(stderr, "connloop: RLIMIT_NOFILE %ld: the library lingers on %ld sockets at most, not %ld"
					" (TCPRARE_LINGER_MAX is not set)\n",
				(long)rl.rlim_cur, (long)rl.rlim_cur / 4 < 16384 ? (long)rl.rlim_cur / 4 : 16384L, count);
	}

	/* -1: the kernel's maximum backlog (net.core.somaxconn). The library leaves such a backlog
	 * alone, so neither arm changes it and there is nothing to log. */
	int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(listen_fd, -1) < 0 ||
	    getsockname(listen_fd, (struct sockaddr *)&addr, &len) < 0)
		die("listen");
	int control[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) < 0)
		die("socketpair");
	/* The client's end must survive its exec: a plain (not close-on-exec) copy. */
	int client_end = dup(control[1]);
	if (client_end < 0)
		die("dup");
	split_off_client(argv[0], mode, count, ntohs(addr.sin_port), client_end);
	close(client_end);
	close(control[1]);
	int ctl = control[0];

	char buf[4096], byte = 'p';
	uint64_t *samples = NULL;
	long fds_before = 0, sockets_before = 0, fds_after = 0, sockets_after = 0, eofs = -1, resets = -1;
	uint64_t drain_ns = 0, close_loop_ns = 0;
	uint64_t wall0 = 0, cpu0 = 0, cpu1 = 0, wall1 = 0;
	if (strcmp(mode, "accept") == 0) {
		wall0 = ns_of(CLOCK_MONOTONIC), cpu0 = ns_of(CLOCK_PROCESS_CPUTIME_ID);
		for (long i = 1; i <= count; i++) {
			int fd = accept(listen_fd, NULL, NULL);
			if (fd < 0)
				die("accept");
			close(fd);
			if (i % STEP == 0 && write(ctl, &byte, 1) < 0 && errno != EPIPE)
				die("report progress");
		}
		cpu1 = ns_of(CLOCK_PROCESS_CPUTIME_ID), wall1 = ns_of(CLOCK_MONOTONIC);
	} else if (strncmp(mode, "answer", 6) == 0) {
		bool asking = strcmp(mode, "answer-ask") == 0;
		wall0 = ns_of(CLOCK_MONOTONIC), cpu0 = ns_of(CLOCK_PROCESS_CPUTIME_ID);
		for (long i = 0; i < count; i++) {
			int fd = accept(listen_fd, NULL, NULL);
			if (fd < 0)
				die("accept");
			read_exactly(fd, buf, sizeof(request) - 1, "read the request");
			write_all(fd, answer, sizeof(answer) - 1, "write the answer");
			if (asking)
				if (!ask_what_a_close_asks(fd))
					die("ask SO_MEMINFO and SIOCOUTQNSD");
			close(fd);
		}
		cpu1 = ns_of(CLOCK_PROCESS_CPUTIME_ID), wall1 = ns_of(CLOCK_MONOTONIC);
	} else if (scaling) {
		count_fds(&fds_before, &sockets_before, LONG_MAX);
		samples = calloc((size_t)count, sizeof(*samples));
		int *fds = calloc((size_t)count, sizeof(*fds));
		if (!samples || !fds)
			die("calloc");
		for (long i = 0; i < count; i++) {
			if ((fds[i] = accept(listen_fd, NULL, NULL)) < 0)
				die("accept");
			write_all(fds[i], answer, sizeof(answer) - 1, "write the answer"); /* data of ours to lose */
		}
		read_exactly(ctl, &byte, 1, "wait for the client");
		for (long i = 0; i < count; i++) { /* every request is there: the client sent them all first */
			struct pollfd p = {.fd = fds[i], .events = POLLIN};
			if (poll(&p, 1, 10000) != 1)
				die("poll for the request");
		}
		uint64_t start = ns_of(CLOCK_MONOTONIC), t0 = start, t1 = start;
		for (long i = 0; i < count; i++) {
			t0 = ns_of(CLOCK_MONOTONIC);
			if (close(fds[i]) != 0)
				die("close");
			t1 = ns_of(CLOCK_MONOTONIC);
			samples[i] = t1 - t0;
		}
		close_loop_ns = t1 - start;
		/* No socket can be drained before the client has read its EOF and closed it: wait for the
		 * client's report of its last close, then count. Counting costs: listing /proc/self/fd takes
		 * about 0.8 us per descriptor here (8 ms for 10,000), on the CPU the drain needs, so each
		 * count is followed by a pause ten times as long as it took (0.2 ms at least). */
		read_report(ctl, &eofs, &resets);
		for (;;) {
			uint64_t s0 = ns_of(CLOCK_MONOTONIC);
			/* At most 8 descriptors of the library's own (ownfd.c) besides the lingering sockets. */
			count_fds(&fds_after, &sockets_after, fds_before + 8);
			uint64_t s1 = ns_of(CLOCK_MONOTONIC);
			if (sockets_after >= 0 && sockets_after <= sockets_before)
				break;
			if (s1 - t1 > 60000000000u) {
				fprintf(stderr, "connloop: %ld descriptors still open 60 s after the last close\n", fds_after);
				return 2;
			}
			uint64_t pause_us = (s1 - s0) / 100;
			usleep(pause_us < 200 ? 200 : (useconds_t)pause_us);
		}
		drain_ns = ns_of(CLOCK_MONOTONIC) - t1;
		free(fds);
	} else {
		samples = calloc((size_t)count, sizeof(*samples));
		int *fds = calloc((size_t)count, sizeof(*fds));
		if (!samples || !fds)
			die("calloc");
		for (long i = 0; i < count; i++) {
			if ((fds[i] = accept(listen_fd, NULL, NULL)) < 0)
				die("accept");
			write_all(fds[i], answer, sizeof(answer) - 1, "write the answer"); /* data of ours to lose */
		}
		read_exactly(ctl, &byte, 1, "wait for the client");
		for (long i = 0; i < count; i++) {
			struct pollfd p = {.fd = fds[i], .events = POLLIN}; /* the request is there: unread input */
			if (poll(&p, 1, 10000) != 1)
				die("poll for the request");
			uint64_t t0 = ns_of(CLOCK_MONOTONIC);
			int rc = close(fds[i]);
			uint64_t t1 = ns_of(CLOCK_MONOTONIC);
			if (rc != 0)
				die("close");
			samples[i] = t1 - t0;
		}
		write_all(ctl, "d", 1, "release the client");
		free(fds);
	}

	if (scaling) {
		qsort(samples, (size_t)count, sizeof(*samples), cmp_u64);
		printf("%llu %llu %llu %ld %ld %ld %ld %ld %ld\n", (unsigned long long)drain_ns,
		       (unsigned long long)close_loop_ns, (unsigned long long)percentile(samples, count, 99),
		       sockets_before, sockets_after, fds_before, fds_after, eofs, resets);
		free(samples);
	} else if (samples) {
		if (argc == 4) {
			FILE *out = fopen(argv[3], "w");
			if (!out)
				die(argv[3]);
			for (long i = 0; i < count; i++)
				fprintf(out, "%llu\n", (unsigned long long)samples[i]);
			if (fclose(out) != 0)
				die(argv[3]);
		}
		qsort(samples, (size_t)count, sizeof(*samples), cmp_u64);
		printf("%llu %llu %llu\n", (unsigned long long)percentile(samples, count, 50),
		       (unsigned long long)percentile(samples, count, 99), (unsigned long long)samples[count - 1]);
		free(samples);
	} else
		printf("%llu %llu\n", (unsigned long long)(wall1 - wall0), (unsigned long long)(cpu1 - cpu0));
	return 0;
}
