/* harden_linger_start: the first lingering closes of a process, made by several threads at the same
 * moment. The first of them starts the library's drain thread; what becomes of the others?
 *
 *   harden_linger_start [-t THREADS] [-r ROUNDS]
 * Each round runs in a fresh child process (so that each round's first close is the process's first):
 * THREADS connections (default 8) whose server sides have 1000 bytes unread, one closing thread per
 * server side, released together by a barrier. Then each client reads to the end: "eof" if its server's
 * close lingered, "reset" if it was a plain one. Prints, over ROUNDS rounds (default 20),
 *   rounds=R closes=C eof=E reset=X
 * Without the library every close resets. alarm(30) bounds it. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_THREADS 64

static pthread_barrier_t start;
static int servers[MAX_THREADS];

static void *closer(void *arg)
{
	int i = (int)(long)arg;
	pthread_barrier_wait(&start);
	close(servers[i]);
	return NULL;
}

/* One round; returns how many clients saw EOF, or -1. */
static int round_once(int threads)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	int listener = socket(AF_INET, SOCK_STREAM, 0), clients[MAX_THREADS];
	char buf[1000];
	memset(buf, 'q', sizeof(buf));
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, len) != 0 || listen(listener, MAX_THREADS) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
		return -1;
	for (int i = 0; i < threads; i++) {
		int queued = 0;
		clients[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (clients[i] < 0 || connect(clients[i], (struct sockaddr *)&addr, len) != 0 ||
		    send(clients[i], buf, sizeof(buf), 0) != sizeof(buf) || (servers[i] = accept(listener, NULL, NULL)) < 0 ||
		    send(servers[i], "a", 1, 0) != 1) /* an answer, which a reset would throw away */
			return -1;
		for (int t = 0; t < 100 && ioctl(servers[i], FIONREAD, &queued) == 0 && queued < (int)sizeof(buf); t++)
			usleep(1000);
	}
	pthread_t ids[MAX_THREADS];
	pthread_barrier_init(&start, NULL, (unsigned int)threads);
	for (int i = 0; i < threads; i++)
		if (pthread_create(&ids[i], NULL, closer, (void *)(long)i) != 0)
			return -1;
	for (int i = 0; i < threads; i++)
		pthread_join(ids[i], NULL);
	int eof = 0;
	for (int i = 0; i < threads; i++) {
		struct pollfd p = {.fd = clients[i], .events = POLLIN};
		ssize_t n = -1;
		while (poll(&p, 1, 3000) == 1 && (n = read(clients[i], buf, sizeof(buf))) > 0)
			;
		eof += n == 0;
		close(clients[i]);
	}
	close(listener);
	return eof;
}

int main(int argc, char **argv)
{
	int threads = 8, rounds = 20, opt;
	while ((opt = getopt(argc, argv, "t:r:")) != -1) {
		if (opt == 't')
			threads = atoi(optarg);
		else if (opt == 'r')
			rounds = atoi(optarg);
		else
			return 2;
	}
	if (threads < 1 || threads > MAX_THREADS || rounds < 1)
		return 2;
	alarm(30);
	signal(SIGPIPE, SIG_IGN);
	int eof = 0, done = 0;
	for (int r = 0; r < rounds; r++) {
		int pipe_fds[2];
		if (pipe(pipe_fds) != 0)
			return 1;
		pid_t pid = fork();
		if (pid == 0) {
			int n = round_once(threads);
			if (write(pipe_fds[1], &n, sizeof(n)) != sizeof(n))
				_exit(1);
			exit(0);
		}
		close(pipe_fds[1]);
		int n = -1;
		if (pid < 0 || read(pipe_fds[0], &n, sizeof(n)) != sizeof(n) || n < 0) {
			fprintf(stderr, "harden_linger_start: round %d failed\n", r);
			return 1;
		}
		close(pipe_fds[0]);
		waitpid(pid, NULL, 0);
		eof += n;
		done++;
	}
	printf("rounds=%d closes=%d eof=%d reset=%d\n", done, done * threads, eof, done * threads - eof);
	return 0;
}
