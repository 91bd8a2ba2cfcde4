/* harden_doorbell: one end of the library's doorbell (the pipe through which a close hands a
 * lingering socket to the drain thread) closed behind the library's back, as a raw close_range()
 * over part of its numbers would: the next lingering closes must neither kill the program (a write
 * into a pipe whose reader is gone raises SIGPIPE) nor leave the drain thread spinning (a pipe whose
 * writer is gone is readable for good).
 *
 *   harden_doorbell END     END: read|write, the library's pipe end to close (this program makes
 *                           no pipe itself)
 * A thread is made and joined first: the process is no longer single-threaded, so the library's drain
 * thread runs from the first lingering close on. One connection whose server side has 5000 bytes
 * unread is closed first (with the library, that makes the doorbell), then END is closed with
 * syscall(SYS_close), and at once another such connection (the close that rings), each read to its end
 * by its client; then the program idles for a second, and closes 4 more. Prints
 *   closed=read|write|none next=eof|reset     the close right after
 *   cpu_ticks=N        the process's CPU ticks over the idle second (a spinning thread: ~100)
 *   after eof=E reset=R                       the last 4
 * Without the library: closed=none, every close resets. alarm(20) bounds it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct sockaddr_in addr = {.sin_family = AF_INET};
static socklen_t addr_len = sizeof(addr);
static int listener;

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* A connection whose server side is closed with 5000 bytes unread; "eof" or "reset" for its client. */
static const char *close_with_unread(void)
{
	int client = socket(AF_INET, SOCK_STREAM, 0);
	if (client < 0 || connect(client, (struct sockaddr *)&addr, addr_len) != 0)
		die("connect");
	int server = accept(listener, NULL, NULL);
	if (server < 0)
		die("accept");
	char buf[65536] = {0};
	if (send(client, buf, 5000, 0) != 5000 || send(server, buf, 100, 0) != 100)
		die("send");
	usleep(20000); /* queued on the server's side */
	close(server);
	ssize_t n = -1; /* no answer within 5 s: counted as a reset */
	struct pollfd p = {.fd = client, .events = POLLIN};
	while (poll(&p, 1, 5000) == 1 && (n = recv(client, buf, sizeof(buf), 0)) > 0)
		;
	const char *end = n == 0 ? "eof" : "reset";
	close(client);
	return end;
}

/* The library's pipe end open for reading (O_RDONLY) or writing (O_WRONLY), or -1: of the pipe
 * whose both ends this process holds (one inherited from whoever started us holds only one). */
static int pipe_end(int mode)
{
	struct {
		int fd, mode;
		char link[64];
	} ends[64];
	int count = 0;
	DIR *dir = opendir("/proc/self/fd");
	if (!dir)
		die("opendir");
	struct dirent *d;
	while ((d = readdir(dir)) && count < 64) {
		char path[300];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", d->d_name);
		ssize_t n = readlink(path, ends[count].link, sizeof(ends[count].link) - 1);
		if (n > 5 && !strncmp(ends[count].link, "pipe:", 5)) {
			ends[count].link[n] = '\0';
			ends[count].fd = atoi(d->d_name);
			ends[count].mode = fcntl(ends[count].fd, F_GETFL) & O_ACCMODE;
			count++;
		}
	}
	closedir(dir);
	for (int i = 0; i < count; i++)
		for (int j = 0; j < count; j++)
			if (ends[i].mode == mode && ends[j].mode != mode && !strcmp(ends[i].link, ends[j].link))
				return ends[i].fd;
	return -1;
}

static void *nothing(void *unused)
{
	return unused;
}

static long cpu_ticks(void)
{
	FILE *f = fopen("/proc/self/stat", "r");
	char line[1024];
	if (!f || !fgets(line, sizeof(line), f))
		die("stat");
	fclose(f);
	long utime = 0, stime = 0;
	char *after = strrchr(line, ')');
	if (!after || sscanf(after + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime, &stime) != 2)
		die("stat");
	return utime + stime;
}

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "read") && strcmp(argv[1], "write"))) {
		fprintf(stderr, "usage: harden_doorbell read|write\n");
		return 2;
	}
	alarm(20);
	pthread_t thread;
	if (pthread_create(&thread, NULL, nothing, NULL) != 0 || pthread_join(thread, NULL) != 0)
		die("pthread_create");
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, addr_len) != 0 || listen(listener, 8) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0)
		die("listen");
	close_with_unread();
	usleep(100000); /* the drain thread finishes that one and waits */
	int end = pipe_end(strcmp(argv[1], "read") ? O_WRONLY : O_RDONLY);
	const char *closed = "none";
	if (end >= 0) {
		syscall(SYS_close, end);
		closed = argv[1];
	}
	printf("closed=%s next=%s\n", closed, close_with_unread());
	fflush(stdout);
	long before = cpu_ticks();
	sleep(1);
	printf("cpu_ticks=%ld\n", cpu_ticks() - before);
	int eof = 0, reset = 0;
	for (int i = 0; i < 4; i++)
		*(strcmp(close_with_unread(), "eof") ? &reset : &eof) += 1;
	printf("after eof=%d reset=%d\n", eof, reset);
	return 0;
}
