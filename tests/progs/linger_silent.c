/* linger_silent: the server closes N connections whose clients never close; how many descriptors
 * does the process hold, right after the closes and once the lingering is over?
 *
 *   linger_silent [-n N] [-t]
 * N clients (default 4) connect and send one byte, then nothing; the server accepts, answers one
 * byte and closes them all with the client's byte unread (a plain close would send RST, and throw the
 * answer away: the close lingers).
 * With -t each client also sends one byte every 100 ms (up to 3 s): never idle, but never done.
 * Prints, counting the sockets among the entries of /proc/self/fd:
 *   base=B           before the server accepted (the clients and the listener are open)
 *   after_close=A    right after the N close() calls, which all returned 0 ("closed=N")
 *   after_wait=W     once the count is back to B, or after 3 s
 * The clients stay open throughout; they are closed only at the end. alarm(10) bounds it. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "socket_count.h"

#define MAX_N 64

static int clients[MAX_N], n = 4;
static volatile int stop;

static void *trickle(void *arg)
{
	(void)arg;
	for (int round = 0; round < 30 && !stop; round++) {
		for (int i = 0; i < n; i++)
			send(clients[i], "t", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		pause_ms(100);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int opt, trickling = 0;
	while ((opt = getopt(argc, argv, "n:t")) != -1) {
		if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 't')
			trickling = 1;
		else
			return 2;
	}
	if (n < 1 || n > MAX_N)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	alarm(10);

	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, len) != 0 || listen(listener, MAX_N) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &len) != 0) {
		perror("linger_silent: listen");
		return 2;
	}
	for (int i = 0; i < n; i++) {
		clients[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (clients[i] < 0 || connect(clients[i], (struct sockaddr *)&addr, len) != 0) {
			perror("linger_silent: connect");
			return 2;
		}
		if (send(clients[i], "r", 1, MSG_NOSIGNAL) != 1) {
			perror("linger_silent: send");
			return 2;
		}
	}
	int base = count_sockets();
	int servers[MAX_N];
	for (int i = 0; i < n; i++)
		if ((servers[i] = accept(listener, NULL, NULL)) < 0 || send(servers[i], "a", 1, 0) != 1) {
			perror("linger_silent: accept");
			return 2;
		}
	pthread_t thread;
	if (trickling && pthread_create(&thread, NULL, trickle, NULL) != 0)
		return 2;
	if (trickling)
		pause_ms(150); /* the peers are sending before the server closes */
	int closed = 0;
	for (int i = 0; i < n; i++)
		closed += close(servers[i]) == 0;
	int after_close = count_sockets();
	int after_wait = after_close;
	for (int i = 0; i < 150 && after_wait != base; i++) {
		pause_ms(20);
		after_wait = count_sockets();
	}
	stop = 1;
	if (trickling)
		pthread_join(thread, NULL);
	printf("closed=%d\nbase=%d\nafter_close=%d\nafter_wait=%d\n", closed, base, after_close, after_wait);
	for (int i = 0; i < n; i++)
		close(clients[i]);
	close(listener);
	return 0;
}
