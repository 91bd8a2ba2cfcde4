/* halfclose_pair: the legal case the CLOSE_WAIT guard must never harm. A client sends a request,
 * shuts down its sending side (its FIN puts the server's socket in CLOSE_WAIT) and reads the answer.
 * The server reads the request line without waiting for EOF, works for a while, then answers with
 * 100000 bytes and closes.
 *
 *   halfclose_pair          server thread and client in one process; prints "client got N bytes"
 *   halfclose_pair -s N     server only, for N connections; prints "port P" first */
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESPONSE_BYTES 100000

static int listener;

static void serve_one(void)
{
	static char response[RESPONSE_BYTES];
	char request[256];
	int fd = accept(listener, NULL, NULL);
	size_t got = 0;
	while (got < sizeof(request) - 1 && !memchr(request, '\n', got)) {
		ssize_t n = read(fd, request + got, sizeof(request) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL); /* work: the client's FIN arrives meanwhile */
	memset(response, 'r', sizeof(response));
	for (size_t sent = 0; sent < sizeof(response);) {
		ssize_t n = write(fd, response + sent, sizeof(response) - sent);
		if (n <= 0) {
			perror("halfclose_pair: server write");
			break;
		}
		sent += (size_t)n;
	}
	close(fd);
}

static void *server_thread(void *arg)
{
	(void)arg;
	serve_one();
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	signal(SIGPIPE, SIG_IGN);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(listener, (struct sockaddr *)&addr, len) != 0 || listen(listener, 8) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &len) != 0) {
		perror("halfclose_pair: listen");
		return 1;
	}
	if (argc == 3 && !strcmp(argv[1], "-s")) {
		printf("port %d\n", ntohs(addr.sin_port));
		fflush(stdout);
		for (int i = atoi(argv[2]); i > 0; i--)
			serve_one();
		return 0;
	}

	pthread_t server;
	pthread_create(&server, NULL, server_thread, NULL);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&addr, len) != 0) {
		perror("halfclose_pair: connect");
		return 1;
	}
	if (write(fd, "request\n", 8) != 8) {
		perror("halfclose_pair: write the request");
		return 1;
	}
	shutdown(fd, SHUT_WR);
	char buf[65536];
	ssize_t n, total = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	pthread_join(server, NULL);
	printf("client got %zd bytes\n", total);
	return 0;
}
