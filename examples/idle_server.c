/* idle_server: the seed's one-way server. It reads newline-terminated messages, prints each one,
 * never answers, and closes any connection that has been idle for IDLE_MS - as servers with an idle
 * timeout do. A client that writes into such a connection after the close loses that message.
 *
 *   idle_server [-6] [-t IDLE_MS] [-d RUN_MS]
 * Prints "port N" first, then "received LINE" for every message, and exits after RUN_MS. */
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONN 64

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int listen_loopback(int ipv6)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (ipv6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	}
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 16) != 0) {
		perror("idle_server: listen");
		exit(1);
	}
	getsockname(fd, (struct sockaddr *)&ss, &len);
	printf("port %d\n", ntohs(ipv6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port));
	fflush(stdout);
	return fd;
}

int main(int argc, char **argv)
{
	int ipv6 = 0, opt;
	long idle_ms = 200, run_ms = 10000;
	while ((opt = getopt(argc, argv, "6t:d:")) != -1) {
		if (opt == '6')
			ipv6 = 1;
		else if (opt == 't')
			idle_ms = atol(optarg);
		else if (opt == 'd')
			run_ms = atol(optarg);
		else {
			fprintf(stderr, "usage: idle_server [-6] [-t IDLE_MS] [-d RUN_MS]\n");
			return 2;
		}
	}
	struct pollfd fds[MAX_CONN + 1] = {{.fd = listen_loopback(ipv6), .events = POLLIN}};
	long last_read[MAX_CONN + 1] = {0};
	int n = 1;
	long end = now_ms() + run_ms;

	while (now_ms() < end) {
		if (poll(fds, n, 20) < 0)
			break;
		if ((fds[0].revents & POLLIN) && n <= MAX_CONN) {
			fds[n] = (struct pollfd){.fd = accept(fds[0].fd, NULL, NULL), .events = POLLIN};
			last_read[n++] = now_ms();
		}
		for (int i = 1; i < n; i++) {
			char buf[4096];
			ssize_t got = 0;
			if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				got = read(fds[i].fd, buf, sizeof(buf) - 1);
				if (got > 0) {
					buf[got] = '\0';
					for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
						printf("received %s\n", line);
					fflush(stdout);
					last_read[i] = now_ms();
				}
			}
			if (got < 0 || (got == 0 && fds[i].revents) || now_ms() - last_read[i] >= idle_ms) {
				close(fds[i].fd); /* idle timeout (or the client went away) */
				fds[i] = fds[n - 1];
				last_read[i] = last_read[n - 1];
				n--;
				i--;
			}
		}
	}
	return 0;
}
