/* harden_emfile: a program that runs out of descriptors (RLIMIT_NOFILE) while its sockets linger.
 * The library must not make the program's calls fail, must leave their errno alone, must not leak a
 * descriptor of its own, and the sockets that were already lingering must still finish.
 *
 *   harden_emfile [-l LIMIT] [-f FREE]
 * Lowers the soft RLIMIT_NOFILE to LIMIT (default 64; exits 77 if it cannot). Six connections, in
 * this process, whose clients sent 1000 bytes the server never reads; each server side answers 100
 * bytes and closes, so every close has unread input (a lingering close with TCPRARE_LINGER=on).
 *
 * Default: three servers close first ("before"); then the program opens /dev/null until open() fails,
 * and while no descriptor is free: socket(), accept() (with a connection waiting) and dup() fail, and
 * the other three servers close ("during"), the program taking each freed number again at once.
 * Then it frees its files, and every client reads to the end. Prints:
 *   filled=N errno=E                       open() failed after N files, with errno E
 *   exhausted socket=E accept=E dup=E      each call's errno while no descriptor was free
 *   closes rc=R,R,R errno_kept=K           the three closes at exhaustion; K=1 if each left errno as it was
 *   before eof=E reset=R answer_bytes=B    how the first three clients' reads ended
 *   during eof=E reset=R answer_bytes=B    and the other three's
 *   sockets_left=S other_added=O           once the clients have closed (waiting up to 5 s for the count
 *                                          to reach 1, the listener): open sockets, and how many other
 *                                          descriptors there are more than at the start
 * With -f FREE it exhausts the descriptors first, leaving FREE of them free, then makes the first
 * lingering close of the process (so the library's drain thread has to start with FREE descriptors
 * or fewer), then frees its files. Prints "fresh free=F close=R errno_kept=K client=eof|reset
 * other_added=O", O counted right after the files were freed: 3 if the drain thread started (its epoll
 * instance and pipe), 0 if it did not (nothing of a failed start may stay behind).
 * alarm(20) bounds it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "socket_count.h"

#define PAIRS 6
#define REQUEST 1000
#define ANSWER 100
#define MAX_FILLERS 4096
#define SENTINEL 4242

static struct sockaddr_in addr = {.sin_family = AF_INET};
static socklen_t addr_len = sizeof(addr);
static int listener;
static int fillers[MAX_FILLERS], nfillers;

static void die(const char *what)
{
	fprintf(stderr, "harden_emfile: %s: %s\n", what, strerror(errno));
	exit(2);
}

static const char *errno_name(int e)
{
	switch (e) {
	case 0: return "0";
	case EMFILE: return "EMFILE";
	case ENFILE: return "ENFILE";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case ENOMEM: return "ENOMEM";
	default: return strerror(e);
	}
}

/* Descriptors that are not sockets: the library's drain thread adds an epoll instance and a pipe. */
static int other_descriptors(void)
{
	DIR *d = opendir("/proc/self/fd");
	int count = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));) {
		char path[300], target[64];
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, target, sizeof(target) - 1);
		count += len > 0 && strncmp(target, "socket:", 7) != 0;
	}
	closedir(d);
	return count;
}

/* A connection whose server side has REQUEST unread bytes and has written its answer. */
static void connect_pair(int *client, int *server)
{
	char request[REQUEST], answer[ANSWER];
	int queued = 0;
	memset(request, 'q', sizeof(request));
	memset(answer, 'a', sizeof(answer));
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&addr, addr_len) != 0 ||
	    (*server = accept(listener, NULL, NULL)) < 0 || send(*client, request, sizeof(request), 0) != sizeof(request) ||
	    send(*server, answer, sizeof(answer), 0) != sizeof(answer))
		die("connection");
	for (int i = 0; i < 100 && ioctl(*server, FIONREAD, &queued) == 0 && queued < REQUEST; i++)
		pause_ms(10);
}

/* Reads to the end (each wait bounded to 3 s); adds the bytes to *bytes. "eof", "reset" or other. */
static const char *read_end(int fd, long *bytes)
{
	char buf[4096];
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 3000) != 1)
			return "timeout";
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0) {
			*bytes += n;
			continue;
		}
		return n == 0 ? "eof" : errno == ECONNRESET ? "reset" : "error";
	}
}

/* Opens /dev/null until it fails; leaves `leave` of those descriptors free again. Returns the errno. */
static int fill(int leave)
{
	int e = 0;
	while (nfillers < MAX_FILLERS) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd < 0) {
			e = errno;
			break;
		}
		fillers[nfillers++] = fd;
	}
	for (int i = 0; i < leave && nfillers > 0; i++)
		close(fillers[--nfillers]);
	return e;
}

static void unfill(void)
{
	while (nfillers > 0)
		close(fillers[--nfillers]);
}

static void report_group(const char *name, const int *clients, int n)
{
	int eof = 0, reset = 0;
	long bytes = 0;
	for (int i = 0; i < n; i++) {
		const char *end = read_end(clients[i], &bytes);
		eof += !strcmp(end, "eof");
		reset += !strcmp(end, "reset");
	}
	printf("%s eof=%d reset=%d answer_bytes=%ld\n", name, eof, reset, bytes);
}

/* Waits up to 5 s for the open sockets to come down to `want`. */
static int settle(int want)
{
	int n = count_sockets();
	for (int i = 0; i < 500 && n > want; i++) {
		pause_ms(10);
		n = count_sockets();
	}
	return n;
}

int main(int argc, char **argv)
{
	int limit = 64, fresh_free = -1, opt;
	while ((opt = getopt(argc, argv, "l:f:")) != -1) {
		if (opt == 'l')
			limit = atoi(optarg);
		else if (opt == 'f')
			fresh_free = atoi(optarg);
		else
			return 2;
	}
	alarm(20);
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)limit)) {
		printf("cannot set RLIMIT_NOFILE to %d\n", limit);
		return 77;
	}
	rl.rlim_cur = (rlim_t)limit;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("setrlimit");
	setvbuf(stdout, NULL, _IONBF, 0); /* no buffer to allocate later, at exhaustion */
	int other_at_start = other_descriptors();

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, addr_len) != 0 || listen(listener, 16) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0)
		die("listener");
	int clients[PAIRS], servers[PAIRS];
	for (int i = 0; i < PAIRS; i++)
		connect_pair(&clients[i], &servers[i]);

	if (fresh_free >= 0) {
		fill(fresh_free);
		errno = SENTINEL;
		int rc = close(servers[0]);
		bool kept = errno == SENTINEL;
		unfill();
		int added = other_descriptors() - other_at_start; /* before any other close can linger */
		long bytes = 0;
		const char *end = read_end(clients[0], &bytes);
		for (int i = 0; i < PAIRS; i++) {
			close(clients[i]);
			if (i)
				close(servers[i]);
		}
		settle(1);
		printf("fresh free=%d close=%d errno_kept=%d client=%s other_added=%d\n", fresh_free, rc, kept, end, added);
		return 0;
	}

	/* Three lingering closes while descriptors are plenty, and one connection left waiting. */
	for (int i = 0; i < PAIRS / 2; i++)
		close(servers[i]);
	int waiting = socket(AF_INET, SOCK_STREAM, 0);
	if (waiting < 0 || connect(waiting, (struct sockaddr *)&addr, addr_len) != 0)
		die("waiting connection");

	int e = fill(0);
	printf("filled=%d errno=%s\n", nfillers, errno_name(e));
	errno = 0;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int socket_errno = s < 0 ? errno : 0;
	errno = 0;
	int a = accept(listener, NULL, NULL);
	int accept_errno = a < 0 ? errno : 0;
	errno = 0;
	int d = dup(0);
	int dup_errno = d < 0 ? errno : 0;
	printf("exhausted socket=%s accept=%s dup=%s\n", errno_name(socket_errno), errno_name(accept_errno),
	       errno_name(dup_errno));
	int rcs[PAIRS / 2];
	bool kept = true;
	for (int i = 0; i < PAIRS / 2; i++) {
		errno = SENTINEL;
		rcs[i] = close(servers[PAIRS / 2 + i]);
		kept = kept && errno == SENTINEL;
		int again = open("/dev/null", O_RDONLY); /* the freed number, taken at once */
		if (again >= 0 && nfillers < MAX_FILLERS)
			fillers[nfillers++] = again;
		else if (again >= 0)
			close(again);
	}
	printf("closes rc=%d,%d,%d errno_kept=%d\n", rcs[0], rcs[1], rcs[2], kept);
	unfill();
	int waited = accept(listener, NULL, NULL);
	if (waited >= 0)
		close(waited);
	close(waiting);
	report_group("before", clients, PAIRS / 2);
	report_group("during", clients + PAIRS / 2, PAIRS / 2);
	for (int i = 0; i < PAIRS; i++)
		close(clients[i]);
	int left = settle(1);
	printf("sockets_left=%d other_added=%d\n", left, other_descriptors() - other_at_start);
	return 0;
}
