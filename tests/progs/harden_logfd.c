/* harden_logfd: a program that puts its own files over the library's log descriptor, with dup2 and
 * dup3, as a program that "knows" which numbers it may use would. The number must become the
 * program's (with the program's file in it), and the log must go on in the log file, never into the
 * program's file.
 *
 *   harden_logfd LOG MINE
 * LOG is the library's log file (TCPRARE_LOG); MINE a file of the program's. Finds the descriptor
 * open on LOG through /proc/self/fd, dup2()s MINE over it and writes "mine 1" through that number,
 * listens on a TCP socket (a "backlog raised" log line); finds LOG's descriptor again (the library
 * moved it), dup3()s a second descriptor of MINE over it with O_CLOEXEC and writes "mine 2", listens
 * again; closes both numbers (they are the program's now) and listens a third time. Prints
 *   found=1 dup2=1 dup3=1 moved=1 cloexec=1 closed=1,1
 * where found: LOG was open; dup2, dup3: each returned the number asked for; moved: LOG was open under
 * another number after the dup2; cloexec: dup3's flag is on the number; closed: both closes returned 0.
 * Exits 1 if LOG is not open at the start (run it with the library and TCPRARE_LOG=LOG). */
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "socket_count.h"

/* The descriptor open on path, or -1. */
static int find(const char *path)
{
	DIR *d = opendir("/proc/self/fd");
	int found = -1;
	for (struct dirent *e; d && (e = readdir(d));) {
		char link[300], target[PATH_MAX];
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (!strcmp(target, path))
			found = atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return found;
}

static void listen_once(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 5) != 0)
		perror("harden_logfd: listen");
	close(fd);
}

int main(int argc, char **argv)
{
	char log[PATH_MAX], mine[PATH_MAX];
	if (argc != 3 || !realpath(argv[1], log))
		return 2;
	int m1 = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (m1 < 0 || !realpath(argv[2], mine))
		return 2;
	int first = find(log);
	if (first < 0) {
		printf("found=0\n");
		return 1;
	}
	int took2 = dup2(m1, first) == first;
	close(m1);
	if (write(first, "mine 1\n", 7) != 7)
		perror("harden_logfd: write 1");
	listen_once();

	int second = find(log);
	int moved = second >= 0 && second != first;
	int m2 = open(mine, O_WRONLY | O_APPEND);
	int took3 = second >= 0 && dup3(m2, second, O_CLOEXEC) == second;
	int cloexec = took3 && (fcntl(second, F_GETFD) & FD_CLOEXEC);
	close(m2);
	if (took3 && write(second, "mine 2\n", 7) != 7)
		perror("harden_logfd: write 2");
	listen_once();

	int closed1 = close(first) == 0, closed2 = second >= 0 && close(second) == 0;
	listen_once();
	printf("found=1 dup2=%d dup3=%d moved=%d cloexec=%d closed=%d,%d\n", took2, took3, moved, cloexec, closed1,
	       closed2);
	return 0;
}
