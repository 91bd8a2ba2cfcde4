/* Request/response over one loopback connection, timed: the shape of an RPC client or a database
 * driver, where every request waits for its answer, so the library's cost sits on the critical path
 * of every round trip.
 *
 *   pingpong N SIZE   connect to a loopback echo server, then N times: write SIZE bytes, read the
 *                     SIZE-byte answer (read() until it is whole). Prints "<wall_ns> <cpu_ns>" for
 *                     the loop alone; the CPU time is this process's, the client's.
 *
 * The echo server is a separate process that execs this program again without LD_PRELOAD and
 * TCPRARE_*, so it is the same in both arms of a comparison and only the client carries the library.
 * The client connected its socket, so with default settings the CLOSE_WAIT guard watches its writes
 * (TCPRARE_CLOSEWAIT_SCOPE=connected). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_SIZE 65536

extern char **environ;

/* 0 at EOF before the first byte; dies on EOF inside a message. */
static size_t read_message(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r == 0) {
			if (got == 0)
				return 0;
			errno = EPIPE;
			die("read: EOF inside a message");
		}
		if (r < 0 && errno != EINTR)
			die("read");
		got += r > 0 ? (size_t)r : 0;
	}
	return got;
}

static void write_all(int fd, const char *buf, size_t n)
{
	for (size_t put = 0; put < n;) {
		ssize_t w = write(fd, buf + put, n - put);
		if (w < 0 && errno != EINTR)
			die("write");
		put += w > 0 ? (size_t)w : 0;
	}
}

static void no_delay(int fd)
{
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		die("TCP_NODELAY");
}

/* Accepts one connection and answers every SIZE-byte message with SIZE bytes, until EOF. */
static int run_server(int listen_fd, size_t size)
{
	static char buf[MAX_SIZE];
	int fd = accept(listen_fd, NULL, NULL);
	if (fd < 0)
		die("accept");
	close(listen_fd);
	no_delay(fd);
	while (read_message(fd, buf, size) == size)
		write_all(fd, buf, size);
	close(fd);
	return 0;
}

/* The server runs without the library (and without its settings), whatever this process has. */
static pid_t start_server(const char *self, int listen_fd, long size)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 1, sizeof(*env));
	if (!env)
		die("calloc");
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0 && strncmp(environ[i], "TCPRARE_", 8) != 0)
			env[kept++] = environ[i];
	}
	char fd_text[16], size_text[16];
	snprintf(fd_text, sizeof(fd_text), "%d", listen_fd);
	snprintf(size_text, sizeof(size_text), "%ld", size);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execve(self, (char *[]){(char *)self, "--server", fd_text, size_text, NULL}, env);
		_exit(127);
	}
	free(env);
	return pid;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--server") == 0)
		return run_server((int)parse_number(argv[2], 0, INT_MAX, "the listening descriptor"),
				  (size_t)parse_number(argv[3], 1, MAX_SIZE, "the size"));
	if (argc != 3) {
		fprintf(stderr, "usage: pingpong N SIZE\n");
		return 2;
	}
	long count = parse_number(argv[1], 1, 100000000, "the count");
	long size = parse_number(argv[2], 1, MAX_SIZE, "the size");

	/* Backlog -1: the kernel's maximum, which the library leaves alone (nothing to log). */
	int listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(listen_fd, -1) < 0 ||
	    getsockname(listen_fd, (struct sockaddr *)&addr, &len) < 0)
		die("listen");
	pid_t server = start_server(argv[0], listen_fd, size);
	close(listen_fd);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("connect");
	no_delay(fd);

	static char request[MAX_SIZE], answer[MAX_SIZE];
	memset(request, 'q', (size_t)size);
	uint64_t wall0 = ns_of(CLOCK_MONOTONIC), cpu0 = ns_of(CLOCK_PROCESS_CPUTIME_ID);
	for (long i = 0; i < count; i++) {
		write_all(fd, request, (size_t)size);
		if (read_message(fd, answer, (size_t)size) != (size_t)size) {
			errno = EPIPE;
			die("read: the server closed");
		}
	}
	uint64_t cpu1 = ns_of(CLOCK_PROCESS_CPUTIME_ID), wall1 = ns_of(CLOCK_MONOTONIC);

	close(fd);
	int status;
	if (waitpid(server, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "pingpong: the server failed\n");
		return 2;
	}
	printf("%llu %llu\n", (unsigned long long)(wall1 - wall0), (unsigned long long)(cpu1 - cpu0));
	return 0;
}
