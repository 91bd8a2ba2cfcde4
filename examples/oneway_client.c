/* oneway_client: the seed's one-way client. It sends COUNT numbered messages, pausing PAUSE_MS
 * before each, never reads, and on a write error reconnects and sends the message again - the
 * careful client that still loses data: a write into a connection the server already closed
 * succeeds, and only the next one fails.
 *
 *   oneway_client [-6] PORT COUNT PAUSE_MS */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int ipv6;
static int port;

static int connect_loopback(void)
{
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_loopback};
	int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ipv6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4,
			      ipv6 ? sizeof(a6) : sizeof(a4)) != 0) {
		perror("oneway_client: connect");
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "-6")) {
		ipv6 = 1;
		argv++, argc--;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: oneway_client [-6] PORT COUNT PAUSE_MS\n");
		return 2;
	}
	port = atoi(argv[1]);
	int count = atoi(argv[2]), failed = 0;
	struct timespec pause = {.tv_sec = atoi(argv[3]) / 1000, .tv_nsec = atoi(argv[3]) % 1000 * 1000000L};
	signal(SIGPIPE, SIG_IGN); /* errors come back as EPIPE */

	int fd = connect_loopback();
	for (int i = 1; i <= count; i++) {
		char msg[32];
		int len = snprintf(msg, sizeof(msg), "msg %d\n", i);
		nanosleep(&pause, NULL);
		while (write(fd, msg, len) != len) {
			printf("write of msg %d failed (%s): reconnecting and sending it again\n", i, strerror(errno));
			failed++;
			close(fd);
			fd = connect_loopback();
		}
		printf("sent msg %d\n", i);
		fflush(stdout);
	}
	printf("sent %d messages, %d writes failed and were resent\n", count, failed);
	close(fd);
	return 0;
}
