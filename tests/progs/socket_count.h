/* Shared by the linger test programs. */
#pragma once
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline void pause_ms(long ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* The process's open sockets. Sockets only: the library keeps descriptors of its own (an epoll
 * instance and a pipe) once it has lingered, and they stay. */
static inline int count_sockets(void)
{
	DIR *d = opendir("/proc/self/fd");
	int count = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));) {
		char path[300], target[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, target, sizeof(target) - 1);
		count += len > 7 && !strncmp(target, "socket:", 7);
	}
	closedir(d);
	return count;
}
