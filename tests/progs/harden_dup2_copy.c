/* harden_dup2_copy: a program that dup2()s a pipe onto the number of a lingering copy, which the
 * library makes look unused to it, while the drain thread is busy reading the peer's data. The
 * number must stay the program's: the drain thread may find its copy gone, never close what took
 * its place.
 *
 *   harden_dup2_copy [ROUNDS]   (default 50)
 * Each round: a forked client connects and sends without pause; the server accepts, closes with the
 * input unread (the close lingers: run with TCPRARE_LINGER=on), finds the copy's number through
 * /proc/self/fd (the socket's inode), dup2()s a pipe onto it after a varying pause, waits 30 ms and
 * checks that the number is still open. Prints
 *   lingered=L kept=K
 * L: rounds whose close lingered (a copy was found), K: of those, rounds where the program still had
 * its number. alarm(60) bounds it. */
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "socket_count.h"

/* The descriptor open on the socket with this inode, or -1. */
static int find_socket(ino_t inode)
{
	char want[64];
	snprintf(want, sizeof(want), "socket:[%lu]", (unsigned long)inode);
	DIR *d = opendir("/proc/self/fd");
	int found = -1;
	for (struct dirent *e; d && (e = readdir(d));) {
		char link[300], target[64];
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (!strcmp(target, want))
			found = atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return found;
}

static void send_forever(const struct sockaddr_in *server)
{
	static char data[65536];
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (const struct sockaddr *)server, sizeof(*server)) == 0)
		while (send(c, data, sizeof(data), MSG_NOSIGNAL) > 0)
			;
	_exit(0);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 50, lingered = 0, kept = 0;
	signal(SIGPIPE, SIG_IGN);
	alarm(60);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(listener, (struct sockaddr *)&addr, len) || listen(listener, 16) ||
	    getsockname(listener, (struct sockaddr *)&addr, &len))
		return 2;
	for (int r = 0; r < rounds; r++) {
		pid_t client = fork();
		if (client == 0)
			send_forever(&addr);
		int s = accept(listener, NULL, NULL);
		struct stat st;
		if (s < 0 || fstat(s, &st))
			return 2;
		if (send(s, "a", 1, MSG_NOSIGNAL) != 1) /* an answer, which a reset would throw away */
			return 2;
		int queued = 0; /* data piles up unread: wait for it (at most 2 s) */
		for (int i = 0; i < 1000 && ioctl(s, FIONREAD, &queued) == 0 && queued == 0; i++)
			pause_ms(2);
		close(s);
		int copy = find_socket(st.st_ino), p[2];
		if (copy >= 0 && pipe(p) == 0) {
			lingered++;
			nanosleep(&(struct timespec){.tv_nsec = r % 5 * 100000L}, NULL);
			dup2(p[0], copy); /* the number looks free to the program */
			pause_ms(30);
			if (fcntl(copy, F_GETFD) >= 0) {
				kept++;
				close(copy);
			}
			close(p[0]);
			close(p[1]);
		}
		kill(client, SIGKILL);
		waitpid(client, NULL, 0);
	}
	printf("lingered=%d kept=%d\n", lingered, kept);
	return 0;
}
