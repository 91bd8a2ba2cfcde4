/* A stream of 1-byte writes, timed: the worst case for a hook on write(), because the system call
 * itself is as cheap as it gets, so whatever the library adds shows.
 *
 *   writestream tcp N    connect to a loopback reader, write(fd, "x", 1) N times
 *   writestream null N   the same N writes to /dev/null (a descriptor the library does not track)
 *   writestream close N  N opens and closes of /dev/null: what close() costs a file (open is not hooked)
 *   writestream tcp-clock N
 *                        as tcp, reading the coarse monotonic clock before each write, as the
 *                        guard's idle test does: that test's floor, run without the library
 *
 * Prints "<wall_ns> <cpu_ns>" for the write loop alone (setup and teardown are not timed). The TCP
 * reader is a separate process that execs this program again without LD_PRELOAD, so it is the
 * same in both arms of a comparison and only the writer carries the library. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

extern char **environ;

/* Accepts one connection and discards everything until EOF. */
static int run_reader(int listen_fd)
{
	int fd = accept(listen_fd, NULL, NULL);
	if (fd < 0)
		die("accept");
	close(listen_fd);
	static char buf[65536];
	ssize_t got;
	while ((got = read(fd, buf, sizeof(buf))) != 0) {
		if (got < 0 && errno != EINTR)
			die("read");
	}
	return 0;
}

/* The reader runs without the library (and without its settings), whatever this process has. */
static pid_t start_reader(const char *self, int listen_fd)
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
	char fd_text[16];
	snprintf(fd_text, sizeof(fd_text), "%d", listen_fd);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execve(self, (char *[]){(char *)self, "--reader", fd_text, NULL}, env);
		_exit(127);
	}
	free(env);
	return pid;
}

static int open_tcp(const char *self, pid_t *reader)
{
	int listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (listen_fd < 0)
		die("socket");
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	/* Backlog -1: the kernel's maximum. The library raises a small backlog and logs it, once per
	 * run; -1 it leaves alone, so the table is not buried in log lines. */
	if (bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(listen_fd, -1) < 0 ||
	    getsockname(listen_fd, (struct sockaddr *)&addr, &len) < 0)
		die("listen");
	*reader = start_reader(self, listen_fd);
	close(listen_fd);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("connect");
	return fd;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--reader") == 0)
		return run_reader((int)parse_number(argv[2], 0, INT_MAX, "the listening descriptor"));
	bool clocked = argc == 3 && strcmp(argv[1], "tcp-clock") == 0;
	bool tcp = clocked || (argc == 3 && strcmp(argv[1], "tcp") == 0);
	bool closes = argc == 3 && strcmp(argv[1], "close") == 0;
	if (argc != 3 || (!tcp && !closes && strcmp(argv[1], "null") != 0)) {
		fprintf(stderr, "usage: writestream tcp|tcp-clock|null|close N\n");
		return 2;
	}
	long count = parse_number(argv[2], 1, 100000000, "the count");
	pid_t reader = 0;
	int fd = tcp ? open_tcp(argv[0], &reader) : open("/dev/null", O_WRONLY);
	if (fd < 0)
		die("open /dev/null");

	uint64_t wall0 = ns_of(CLOCK_MONOTONIC), cpu0 = ns_of(CLOCK_PROCESS_CPUTIME_ID);
	struct timespec now;
	for (long i = 0; i < count; i++) {
		if (clocked)
			clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
		if (closes) {
			int file = open("/dev/null", O_RDONLY);
			if (file < 0 || close(file) != 0)
				die("open and close /dev/null");
		} else if (write(fd, "x", 1) != 1)
			die("write");
	}
	uint64_t cpu1 = ns_of(CLOCK_PROCESS_CPUTIME_ID), wall1 = ns_of(CLOCK_MONOTONIC);

	close(fd);
	if (reader > 0) {
		int status;
		if (waitpid(reader, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "writestream: the reader failed\n");
			return 2;
		}
	}
	printf("%llu %llu\n", (unsigned long long)(wall1 - wall0), (unsigned long long)(cpu1 - cpu0));
	return 0;
}
