/* burst_client: opens N connections at once, as a load spike does, sends each an HTTP/1.0 request and
 * waits for the whole answer. Reports how many were served, failed or still pending at the deadline,
 * how many needed a retransmission (their SYN, final ACK or request was dropped: the sign of an
 * overflowing accept queue), and the latency percentiles of those served.
 *
 *   burst_client [-6] [-n N] [-t DEADLINE_MS] PORT
 * Prints one line: "served=S failed=F pending=P retransmitted=R p50_ms=.. p99_ms=.. max_ms=..". */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 1000
#define REQUEST "GET / HTTP/1.0\r\n\r\n"

enum state { CONNECTING, WAITING, SERVED, FAILED };

struct client {
	int fd;
	enum state state;
	size_t received;
	long done_ms;
	bool retransmitted;
};

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int start_connect(int ipv6, int port)
{
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT, .sin6_port = htons(port)};
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(port)};
	struct sockaddr *addr = ipv6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4;
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd >= 0 && connect(fd, addr, ipv6 ? sizeof(a6) : sizeof(a4)) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool retransmitted(int fd)
{
	struct tcp_info info;
	socklen_t len = sizeof(info);
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 && info.tcpi_total_retrans > 0;
}

/* One step for a client whose socket poll reported ready. */
static void advance(struct client *c, short revents, long start)
{
	char buf[4096];
	if (c->state == CONNECTING && (revents & POLLOUT)) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		c->state = err == 0 && send(c->fd, REQUEST, strlen(REQUEST), MSG_NOSIGNAL) > 0 ? WAITING : FAILED;
	} else if (c->state == WAITING && (revents & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		if (n > 0) {
			c->received += (size_t)n;
			return;
		}
		c->state = n == 0 && c->received > 0 ? SERVED : FAILED;
	} else
		return;
	if (c->state == SERVED || c->state == FAILED) {
		c->retransmitted = retransmitted(c->fd);
		c->done_ms = now_ms() - start;
		close(c->fd);
	}
}

static int by_value(const void *a, const void *b)
{
	return (int)(*(const long *)a - *(const long *)b);
}

int main(int argc, char **argv)
{
	int ipv6 = 0, n = 100, opt;
	long deadline_ms = 5000;
	while ((opt = getopt(argc, argv, "6n:t:")) != -1) {
		if (opt == '6')
			ipv6 = 1;
		else if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 't')
			deadline_ms = atol(optarg);
		else
			break;
	}
	if (optind != argc - 1 || n < 1 || n > MAX_CLIENTS) {
		fprintf(stderr, "usage: burst_client [-6] [-n N (1-%d)] [-t DEADLINE_MS] PORT\n", MAX_CLIENTS);
		return 2;
	}
	int port = atoi(argv[optind]);
	static struct client clients[MAX_CLIENTS];
	static struct pollfd fds[MAX_CLIENTS];
	long start = now_ms();
	for (int i = 0; i < n; i++) {
		clients[i] = (struct client){.fd = start_connect(ipv6, port), .state = CONNECTING};
		if (clients[i].fd < 0)
			clients[i].state = FAILED;
	}
	for (;;) {
		int waiting = 0;
		for (int i = 0; i < n; i++) {
			bool open = clients[i].state == CONNECTING || clients[i].state == WAITING;
			fds[i] = (struct pollfd){.fd = open ? clients[i].fd : -1,
						 .events = clients[i].state == CONNECTING ? POLLOUT : POLLIN};
			waiting += open;
		}
		long left = start + deadline_ms - now_ms();
		if (!waiting || left <= 0)
			break;
		if (poll(fds, (nfds_t)n, (int)left) <= 0)
			continue;
		for (int i = 0; i < n; i++)
			if (fds[i].revents)
				advance(&clients[i], fds[i].revents, start);
	}
	int served = 0, failed = 0, pending = 0, retrans = 0;
	static long latency[MAX_CLIENTS];
	for (int i = 0; i < n; i++) {
		struct client *c = &clients[i];
		if (c->state == CONNECTING || c->state == WAITING) {
			c->retransmitted = retransmitted(c->fd);
			pending++;
		}
		served += c->state == SERVED;
		failed += c->state == FAILED;
		retrans += c->retransmitted;
		if (c->state == SERVED)
			latency[served - 1] = c->done_ms;
	}
	qsort(latency, (size_t)served, sizeof(long), by_value);
	printf("served=%d failed=%d pending=%d retransmitted=%d p50_ms=%ld p99_ms=%ld max_ms=%ld\n", served, failed,
	       pending, retrans, served ? latency[served / 2] : 0, served ? latency[(served * 99) / 100] : 0,
	       served ? latency[served - 1] : 0);
	return 0;
}
