/* The memory the library adds to a small program, and to a child it forks.
 *
 *   memprobe plain    a loopback connection within this process (a listener, the connecting end and
 *                     the accepted end), one byte written each way, then fork(): the child writes one
 *                     more byte on the connection it inherited, and both stop there.
 *   memprobe linger   the same, plus one close() that lingers under TCPRARE_LINGER=on before the
 *                     fork: a second connection whose request is left unread and whose peer stays
 *                     open, so the library starts its drain thread (without the library, or with
 *                     lingering off, that close sends RST).
 *
 * Prints "<rss> <private_dirty> <child_rss> <child_private_dirty>", in KiB: VmRSS from
 * /proc/PID/status and Private_Dirty from /proc/PID/smaps_rollup, of this process just before the
 * fork, and of the child once it has written its byte (while it waits). The files are read with
 * open/read into static buffers, so measuring allocates nothing. RSS counts every resident page
 * mapped, shared ones too (the library's code; in the child, the pages of its parent that fork()
 * mapped into it, still shared); Private_Dirty counts the pages only this process has written: in
 * the child, the ones it copied since the fork, which is what a forked child really costs. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

/* The number after "key:" in a /proc file of "key: value kB" lines; -1 if absent. */
static long proc_kib(const char *path, const char *key)
{
	static char text[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(path);
	size_t got = 0;
	ssize_t n;
	while (got < sizeof(text) - 1 && (n = read(fd, text + got, sizeof(text) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	text[got] = '\0';
	size_t len = strlen(key);
	for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (strncmp(line, key, len) == 0 && line[len] == ':')
			return strtol(line + len + 1, NULL, 10);
	return -1;
}

static void connect_pair(int listener, const struct sockaddr_in *addr, int *client, int *server)
{
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (const struct sockaddr *)addr, sizeof(*addr)) < 0)
		die("connect");
	if ((*server = accept(listener, NULL, NULL)) < 0)
		die("accept");
}

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "plain") != 0 && strcmp(argv[1], "linger") != 0)) {
		fprintf(stderr, "usage: memprobe plain|linger\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(listener, -1) < 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &len) < 0)
		die("listen");
	int client, server;
	char byte = 'x';
	connect_pair(listener, &addr, &client, &server);
	if (write(client, &byte, 1) != 1 || read(server, &byte, 1) != 1 || write(server, &byte, 1) != 1 ||
	    read(client, &byte, 1) != 1)
		die("exchange a byte");
	int keep_open = -1;
	if (strcmp(argv[1], "linger") == 0) {
		int unread;
		connect_pair(listener, &addr, &keep_open, &unread);
		if (write(keep_open, "request", 7) != 7)
			die("send a request");
		usleep(10000); /* the request is in the server's receive queue: its close would send RST */
		close(unread); /* lingers, under TCPRARE_LINGER=on */
		usleep(10000); /* the drain thread takes the socket over */
	}

	long rss = proc_kib("/proc/self/status", "VmRSS");
	long dirty = proc_kib("/proc/self/smaps_rollup", "Private_Dirty");
	int ready[2], stop[2];
	if (pipe(ready) < 0 || pipe(stop) < 0)
		die("pipe");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(ready[0]);
		close(stop[1]);
		if (write(client, &byte, 1) != 1 || write(ready[1], &byte, 1) != 1)
			_exit(2);
		while (read(stop[0], &byte, 1) < 0 && errno == EINTR)
			; /* stopped until the parent has measured, or is gone */
		_exit(0);
	}
	close(ready[1]);
	close(stop[0]);
	if (read(ready[0], &byte, 1) != 1)
		die("wait for the child");
	char status_path[64], rollup_path[64];
	snprintf(status_path, sizeof(status_path), "/proc/%d/status", (int)child);
	snprintf(rollup_path, sizeof(rollup_path), "/proc/%d/smaps_rollup", (int)child);
	long child_rss = proc_kib(status_path, "VmRSS");
	long child_dirty = proc_kib(rollup_path, "Private_Dirty");
	close(stop[1]);
	int status;
	if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "memprobe: the child failed\n");
		return 2;
	}
	if (rss < 0 || dirty < 0 || child_rss < 0 || child_dirty < 0) {
		fprintf(stderr, "memprobe: VmRSS or Private_Dirty missing from /proc\n");
		return 2;
	}
	printf("%ld %ld %ld %ld\n", rss, dirty, child_rss, child_dirty);
	return 0;
}
