/* linger_fork: a process forks while sockets it closed are still lingering (their clients, in this
 * process too, never close before the fork). The child must not hold the lingering sockets, must be
 * able to linger on its own, and must exit.
 *
 *   linger_fork [-n N]
 * The server closes N connections (default 3) whose clients sent 100 bytes it never read, then forks.
 * "Hidden" sockets are open sockets the program does not hold (it holds the listener and its clients):
 *   parent_hidden=H    before the fork: the lingering ones, N with tcprare and 0 without
 *   child_hidden=H     in the child: 0 (the lingering sockets are not the child's)
 *   child_peer=E       the child's own connection: its server side closes with 100 bytes unread, and
 *                      its client reads to the end: eof (a FIN: the close lingered) or ECONNRESET
 *   child_exit=S       the child's exit status, or "timeout" if it has not exited within 5 s
 * alarm(10) bounds the parent, alarm(5) the child. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "socket_count.h"

#define MAX_N 16

static struct sockaddr_in addr = {.sin_family = AF_INET};
static socklen_t addr_len = sizeof(addr);
static int listener;

/* A connection whose client has sent 100 bytes that sit unread at the server side. */
static void connect_pair(int *client, int *server)
{
	char request[100];
	memset(request, 'q', sizeof(request));
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&addr, addr_len) != 0 ||
	    (*server = accept(listener, NULL, NULL)) < 0 || send(*client, request, sizeof(request), 0) != sizeof(request)) {
		perror("linger_fork: connection");
		exit(2);
	}
	int queued = 0;
	for (int i = 0; i < 100 && ioctl(*server, FIONREAD, &queued) == 0 && queued < (int)sizeof(request); i++)
		pause_ms(10);
	if (send(*server, "answer", 6, 0) != 6) { /* a plain close would throw it away with the RST */
		perror("linger_fork: answer");
		exit(2);
	}
}

/* Reads to the end (each wait bounded to 3 s): "eof", "ECONNRESET", or what else happened. */
static const char *read_end(int fd)
{
	char buf[4096];
	for (int reads = 0; reads < 100; reads++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 3000) != 1)
			return "timeout";
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0)
			return "eof";
		if (n < 0)
			return errno == ECONNRESET ? "ECONNRESET" : strerror(errno);
	}
	return "endless";
}

static int child(int held)
{
	alarm(5);
	printf("child_hidden=%d\n", count_sockets() - held);
	int client, server;
	connect_pair(&client, &server);
	close(server);
	printf("child_peer=%s\n", read_end(client));
	fflush(stdout);
	close(client);
	return 0; /* exit(): the library's exit handling runs, as in any child that returns from main */
}

int main(int argc, char **argv)
{
	int n = 3, opt;
	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt == 'n')
			n = atoi(optarg);
		else
			return 2;
	}
	if (n < 1 || n > MAX_N)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	alarm(10);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, addr_len) != 0 || listen(listener, MAX_N) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0) {
		perror("linger_fork: listen");
		return 2;
	}
	int clients[MAX_N], servers[MAX_N];
	for (int i = 0; i < n; i++)
		connect_pair(&clients[i], &servers[i]);
	for (int i = 0; i < n; i++)
		close(servers[i]);
	int held = 1 + n; /* the listener and the clients */
	printf("parent_hidden=%d\n", count_sockets() - held);
	fflush(stdout);

	pid_t pid = fork();
	if (pid < 0) {
		perror("linger_fork: fork");
		return 2;
	}
	if (pid == 0)
		return child(held);
	int status = 0;
	pid_t done = 0;
	for (int i = 0; i < 500 && done == 0; i++) {
		done = waitpid(pid, &status, WNOHANG);
		if (done == 0)
			pause_ms(10);
	}
	if (done == pid && WIFEXITED(status))
		printf("child_exit=%d\n", WEXITSTATUS(status));
	else if (done == pid)
		printf("child_exit=signal%d\n", WTERMSIG(status));
	else {
		printf("child_exit=timeout\n");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	for (int i = 0; i < n; i++)
		close(clients[i]);
	close(listener);
	return 0;
}
