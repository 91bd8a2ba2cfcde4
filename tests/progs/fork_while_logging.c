/* fork_while_logging: a child forked while other threads of its parent are logging can log too.
 *
 *   fork_while_logging FORKS
 * THREADS threads listen() on fresh TCP sockets in a loop (each listen logs "backlog raised"), while
 * the main thread forks FORKS children one after another; each child listens once, so logs one line,
 * and exits. With TCPRARE_LOG=...%p each child has a log file of its own, which the test reads.
 * Prints "forked N". alarm(60) bounds it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "listen_once.h"

#define THREADS 4

static int stop;

static void *logger(void *unused)
{
	(void)unused;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
		listen_once();
	return NULL;
}

int main(int argc, char **argv)
{
	int forks = argc > 1 ? atoi(argv[1]) : 0, forked = 0;
	pthread_t threads[THREADS];
	alarm(60);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, logger, NULL);
	for (int i = 0; i < forks; i++) {
		pid_t child = fork();
		if (child == 0) {
			listen_once();
			_exit(0);
		}
		if (child > 0 && waitpid(child, NULL, 0) == child)
			forked++;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	printf("forked %d\n", forked);
	return 0;
}
