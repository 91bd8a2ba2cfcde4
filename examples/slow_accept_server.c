/* slow_accept_server: a server with python socketserver's backlog of 5 that accepts slowly, as a
 * busy single-threaded server does. Under a burst of connects its accept queue runs full: Linux then
 * drops SYNs and final ACKs, and those clients wait a second or more for a retransmission.
 *
 *   slow_accept_server [-6] [-b BACKLOG] [-w WORK_MS] [-d RUN_MS]
 * Prints "port N", then serves each connection in turn: reads an HTTP-style request (up to the blank
 * line), spends WORK_MS on it, answers "HTTP/1.0 200 OK" with a body "served N", and closes.
 * Exits after RUN_MS. */
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int listen_loopback(int ipv6, int backlog)
{
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr *addr = ipv6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4;
	socklen_t len = ipv6 ? sizeof(a6) : sizeof(a4);
	int fd = socket(addr->sa_family, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, addr, len) != 0 || listen(fd, backlog) != 0) {
		perror("slow_accept_server: listen");
		exit(1);
	}
	getsockname(fd, addr, &len);
	printf("port %d\n", ntohs(ipv6 ? a6.sin6_port : a4.sin_port));
	fflush(stdout);
	return fd;
}

/* Reads until the request's blank line (or EOF, or 1 s of silence), so that closing sends no RST. */
static void read_request(int fd)
{
	char buf[4096];
	size_t len = 0;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (len < sizeof(buf) - 1 && poll(&p, 1, 1000) == 1) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
			return;
	}
}

int main(int argc, char **argv)
{
	int ipv6 = 0, backlog = 5, opt;
	long work_ms = 5, run_ms = 10000;
	while ((opt = getopt(argc, argv, "6b:w:d:")) != -1) {
		if (opt == '6')
			ipv6 = 1;
		else if (opt == 'b')
			backlog = atoi(optarg);
		else if (opt == 'w')
			work_ms = atol(optarg);
		else if (opt == 'd')
			run_ms = atol(optarg);
		else {
			fprintf(stderr, "usage: slow_accept_server [-6] [-b BACKLOG] [-w WORK_MS] [-d RUN_MS]\n");
			return 2;
		}
	}
	int listener = listen_loopback(ipv6, backlog);
	long end = now_ms() + run_ms;
	struct pollfd p = {.fd = listener, .events = POLLIN};
	for (int served = 1; now_ms() < end;) {
		if (poll(&p, 1, 100) != 1)
			continue;
		int fd = accept(listener, NULL, NULL);
		if (fd < 0)
			continue;
		read_request(fd);
		usleep((useconds_t)work_ms * 1000);
		char answer[64];
		int n = snprintf(answer, sizeof(answer), "HTTP/1.0 200 OK\r\n\r\nserved %d\n", served++);
		if (write(fd, answer, (size_t)n) < 0)
			perror("slow_accept_server: write");
		close(fd);
	}
	return 0;
}
