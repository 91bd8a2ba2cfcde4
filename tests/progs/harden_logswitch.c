/* harden_logswitch: threads that make the library log while the main thread closes the library's log
 * descriptor behind its back (close_range as a raw system call, as glibc's closefrom() does), so that
 * several threads find the log file gone at once and reopen it.
 *
 *   harden_logswitch LOG
 * LOG is the library's log file (TCPRARE_LOG). THREADS threads each listen() on ROUNDS fresh TCP
 * sockets (each listen logs "backlog raised"); meanwhile the main thread finds the descriptor open on
 * LOG (/proc/self/fd) and closes it, CLOSES times. Prints
 *   log_fds=N other_fds_added=M
 * once the threads are done and one more listen has logged: N descriptors open on LOG (the library's
 * one, reopened), M others more than at the start (none: nothing leaked). alarm(30) bounds it. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "listen_once.h"
#include "socket_count.h"

#define THREADS 4
#define ROUNDS 300
#define CLOSES 50

/* The descriptor open on path (the last one found), or -1; also how many are open on it, and how
 * many others above 2. */
static int find(const char *path, int *on_path, int *others)
{
	DIR *d = opendir("/proc/self/fd");
	int found = -1;
	*on_path = *others = 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		char link[300], target[4096];
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == dirfd(d) || fd <= 2)
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(link, target, sizeof(target) - 1);
		target[len > 0 ? len : 0] = '\0';
		if (!strcmp(target, path)) {
			found = fd;
			++*on_path;
		} else
			++*others;
	}
	if (d)
		closedir(d);
	return found;
}

static void *logger(void *unused)
{
	(void)unused;
	for (int i = 0; i < ROUNDS; i++)
		listen_once();
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	alarm(30);
	int log_fds, other_fds, others_at_start;
	find(argv[1], &log_fds, &others_at_start);
	pthread_t threads[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, logger, NULL);
	for (int i = 0; i < CLOSES; i++) {
		int fd = find(argv[1], &log_fds, &other_fds);
		if (fd >= 0)
			syscall(SYS_close_range, (unsigned int)fd, (unsigned int)fd, 0);
		nanosleep(&(struct timespec){.tv_nsec = 500000}, NULL);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	listen_once();
	find(argv[1], &log_fds, &other_fds);
	printf("log_fds=%d other_fds_added=%d\n", log_fds, other_fds - others_at_start);
	return 0;
}
