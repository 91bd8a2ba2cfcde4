/* early_answer_server: answers as soon as a request begins, without reading the rest of it, and
 * closes - as a server does that rejects an upload it does not want ("413 too large") or answers
 * before the body. The kernel answers the unread upload with RST, and the part of the answer still
 * on its way to the client is thrown away: the client sees "connection reset by peer".
 *
 *   early_answer_server [-6] [-f] [-c HOW] [-r ANSWER_BYTES] [-d RUN_MS]
 * Prints "port N", then for each connection: reads once, writes ANSWER_BYTES ('x's after a header
 * line "ANSWER n"), and closes. With -f, a forked child serves each connection and the parent
 * closes its copy at once, as classic fork-per-connection servers do. Exits after RUN_MS.
 * -c says how the connection is given up: close (the default); dup2 or dup3, /dev/null copied over
 * its number (which a program does to keep the number taken), then closed; fclose, where the
 * answer goes through a FILE made with fdopen(), as a stdio server's does. */
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int listen_loopback(int ipv6)
{
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr *addr = ipv6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4;
	socklen_t len = ipv6 ? sizeof(a6) : sizeof(a4);
	int fd = socket(addr->sa_family, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, addr, len) != 0 || listen(fd, 64) != 0) {
		perror("early_answer_server: listen");
		exit(1);
	}
	getsockname(fd, addr, &len);
	printf("port %d\n", ntohs(ipv6 ? a6.sin6_port : a4.sin_port));
	fflush(stdout);
	return fd;
}

static void answer(int fd, size_t bytes)
{
	char buf[65536];
	if (read(fd, buf, sizeof(buf)) <= 0) /* the start of the request: the rest stays unread */
		return;
	int n = snprintf(buf, sizeof(buf), "ANSWER %zu\n", bytes);
	if (write(fd, buf, (size_t)n) != n)
		return;
	memset(buf, 'x', sizeof(buf));
	for (size_t sent = 0; sent < bytes;) {
		ssize_t w = write(fd, buf, bytes - sent < sizeof(buf) ? bytes - sent : sizeof(buf));
		if (w <= 0)
			return;
		sent += (size_t)w;
	}
}

/* The answer through stdio, as a server that writes with fprintf does; fclose() writes the last
 * of it, then closes. */
static void answer_with_stdio(int fd, size_t bytes)
{
	char buf[65536];
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return;
	}
	if (read(fd, buf, sizeof(buf)) > 0) {
		fprintf(f, "ANSWER %zu\n", bytes);
		memset(buf, 'x', sizeof(buf));
		for (size_t sent = 0; sent < bytes; sent += sizeof(buf) / 2)
			fwrite(buf, 1, bytes - sent < sizeof(buf) / 2 ? bytes - sent : sizeof(buf) / 2, f);
	}
	if (fclose(f) != 0)
		perror("early_answer_server: fclose");
}

static void give_up(int fd, const char *how)
{
	if (strcmp(how, "close") == 0) {
		close(fd);
		return;
	}
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || (strcmp(how, "dup2") == 0 ? dup2(null, fd) : dup3(null, fd, O_CLOEXEC)) != fd)
		perror("early_answer_server: dup over the connection");
	close(null);
	close(fd);
}

int main(int argc, char **argv)
{
	int ipv6 = 0, fork_each = 0, opt;
	const char *how = "close";
	size_t answer_bytes = 1 << 20;
	long run_ms = 10000;
	while ((opt = getopt(argc, argv, "6fc:r:d:")) != -1) {
		if (opt == '6')
			ipv6 = 1;
		else if (opt == 'f')
			fork_each = 1;
		else if (opt == 'c' && (!strcmp(optarg, "close") || !strcmp(optarg, "dup2") ||
					!strcmp(optarg, "dup3") || !strcmp(optarg, "fclose")))
			how = optarg;
		else if (opt == 'r')
			answer_bytes = strtoul(optarg, NULL, 10);
		else if (opt == 'd')
			run_ms = atol(optarg);
		else {
			fprintf(stderr, "usage: early_answer_server [-6] [-f] [-c close|dup2|dup3|fclose] [-r ANSWER_BYTES] "
					"[-d RUN_MS]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	int listener = listen_loopback(ipv6);
	long end = now_ms() + run_ms;
	struct pollfd p = {.fd = listener, .events = POLLIN};
	while (now_ms() < end) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (poll(&p, 1, 100) != 1)
			continue;
		int fd = accept(listener, NULL, NULL);
		if (fd < 0)
			continue;
		if (fork_each && fork() == 0) {
			close(listener);
			answer(fd, answer_bytes);
			close(fd);
			_exit(0);
		}
		if (fork_each)
			close(fd);
		else if (strcmp(how, "fclose") == 0)
			answer_with_stdio(fd, answer_bytes);
		else {
			answer(fd, answer_bytes);
			give_up(fd, how);
		}
	}
	while (wait(NULL) > 0)
		;
	return 0;
}
