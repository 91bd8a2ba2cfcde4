/* linger_many: N loopback connections (default 1000) at once, each with a request the server never
 * reads and a 1000-byte answer; the server closes all N, then each client reads its answer to the end.
 * A close that waited for its peer would never return: the clients read only after every close.
 *
 *   linger_many [-n N] [-k]
 * Raises RLIMIT_NOFILE's soft limit to min(hard, 8192) first, unless -k (keep it); exits 77 if
 * 3N + 64 descriptors do not fit.
 * Prints "closed=N failed=F" (close() calls that returned 0, and the others), then what the
 * clients saw: "eof=E reset=R other=O answer_bytes=B", then "sockets_left=S": the sockets still
 * open once the clients have closed too (it waits up to 5 s for the count to reach 1, the listener).
 * alarm(20) bounds it. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "socket_count.h"

#define REQUEST 1000
#define ANSWER 1000

int main(int argc, char **argv)
{
	int n = 1000, keep_limit = 0, opt;
	while ((opt = getopt(argc, argv, "n:k")) != -1) {
		if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 'k')
			keep_limit = 1;
		else
			return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	alarm(20);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rlim_t want = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
	if (!keep_limit && rl.rlim_cur < want) {
		rl.rlim_cur = want;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < (rlim_t)(3 * n + 64)) {
		printf("RLIMIT_NOFILE %lu is too low for %d connections\n", (unsigned long)rl.rlim_cur, n);
		return 77;
	}
	int *clients = calloc((size_t)n, sizeof(int)), *servers = calloc((size_t)n, sizeof(int));
	if (!clients || !servers)
		return 2;

	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, len) != 0 || listen(listener, 64) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &len) != 0) {
		perror("linger_many: listen");
		return 2;
	}
	char request[REQUEST], answer[ANSWER];
	memset(request, 'q', sizeof(request));
	memset(answer, 'a', sizeof(answer));
	for (int i = 0; i < n; i++) {
		clients[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (clients[i] < 0 || connect(clients[i], (struct sockaddr *)&addr, len) != 0 ||
		    (servers[i] = accept(listener, NULL, NULL)) < 0) {
			fprintf(stderr, "linger_many: connection %d: %s\n", i, strerror(errno));
			return 2;
		}
		if (send(clients[i], request, sizeof(request), 0) != sizeof(request) ||
		    send(servers[i], answer, sizeof(answer), 0) != sizeof(answer)) {
			perror("linger_many: send");
			return 2;
		}
	}
	/* Every request is queued, unread, at its server side before the closes. */
	for (int i = 0; i < n; i++) {
		int queued = 0;
		for (int tries = 0; tries < 100 && ioctl(servers[i], FIONREAD, &queued) == 0 && queued < REQUEST; tries++)
			pause_ms(10);
	}

	int closed = 0, failed = 0;
	for (int i = 0; i < n; i++) {
		if (close(servers[i]) == 0)
			closed++;
		else
			failed++;
	}
	printf("closed=%d failed=%d\n", closed, failed);

	int eof = 0, reset = 0, other = 0;
	long answer_bytes = 0;
	for (int i = 0; i < n; i++) {
		char buf[4096];
		for (int reads = 0; reads < 100; reads++) {
			struct pollfd p = {.fd = clients[i], .events = POLLIN};
			ssize_t got = poll(&p, 1, 5000) == 1 ? recv(clients[i], buf, sizeof(buf), 0) : -2;
			if (got > 0) {
				answer_bytes += got;
				continue;
			}
			if (got == 0)
				eof++;
			else if (got == -1 && errno == ECONNRESET)
				reset++;
			else
				other++;
			break;
		}
		close(clients[i]);
	}
	printf("eof=%d reset=%d other=%d answer_bytes=%ld\n", eof, reset, other, answer_bytes);

	int left = count_sockets();
	for (int i = 0; i < 250 && left > 1; i++) {
		pause_ms(20);
		left = count_sockets();
	}
	printf("sockets_left=%d\n", left - 1);
	close(listener);
	return 0;
}
