/* hammer: many threads creating, copying and closing TCP sockets at once, over IPv4 and IPv6, while
 * another thread forks children that do the same. The descriptor table is shared by all threads and
 * reused numbers come and go constantly: nothing may be lost, refused or leaked.
 *
 * Each of WORKERS threads, ITERATIONS times: connect to a shared listener, write exactly 1000 bytes,
 * dup the socket, close both copies, accept one connection from the same listener (any thread's),
 * read it to EOF and close it. A forking thread meanwhile starts CHILDREN children one at a time; each
 * closes what it inherited and does CHILD_ITERATIONS of the same on a listener of its own, and exits 0
 * only if every byte arrived.
 *
 * At the end every connection must have carried exactly 1000 bytes, all bytes written must have been
 * read, and as many descriptors must be open as at the start. Then it prints "ok bytes=N" and exits 0;
 * otherwise it says what went wrong and exits 1. Over DEADLINE_S seconds it exits 3. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 4
#define ITERATIONS 300
#define CHILDREN 10
#define CHILD_ITERATIONS 30
#define MESSAGE_BYTES 1000
#define DEADLINE_S 20

struct listeners {
	int fd[2];                      /* IPv4, IPv6 */
	struct sockaddr_storage addr[2];
	socklen_t len[2];
};

static struct listeners shared;
static long bytes_written, bytes_read, failures;

static void fail(const char *what)
{
	fprintf(stderr, "hammer[%d]: %s: %s\n", (int)getpid(), what, strerror(errno));
	__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
}

static void on_deadline(int sig)
{
	(void)sig;
	static const char msg[] = "hammer: deadline exceeded\n";
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing left to tell */
	}
	_exit(3);
}

static int open_descriptors(void)
{
	DIR *dir = opendir("/proc/self/fd");
	int n = 0;
	if (!dir)
		return -1;
	while (readdir(dir))
		n++;
	closedir(dir);
	return n;
}

static bool listen_on(struct listeners *l)
{
	for (int v6 = 0; v6 < 2; v6++) {
		struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
		memset(&l->addr[v6], 0, sizeof(l->addr[v6]));
		if (v6)
			memcpy(&l->addr[v6], &a6, sizeof(a6));
		else
			memcpy(&l->addr[v6], &a4, sizeof(a4));
		l->len[v6] = v6 ? sizeof(a6) : sizeof(a4);
		l->fd[v6] = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (l->fd[v6] < 0 || bind(l->fd[v6], (struct sockaddr *)&l->addr[v6], l->len[v6]) != 0 ||
		    listen(l->fd[v6], 64) != 0 ||
		    getsockname(l->fd[v6], (struct sockaddr *)&l->addr[v6], &l->len[v6]) != 0) {
			fail("listen");
			return false;
		}
	}
	return true;
}

/* Writes the whole message through one of three entry points; returns the bytes written. */
static long send_message(int fd, int how)
{
	static const char message[MESSAGE_BYTES] = {'m'};
	long sent = 0;
	while (sent < MESSAGE_BYTES) {
		const char *at = message + sent;
		size_t left = (size_t)(MESSAGE_BYTES - sent);
		struct iovec iov[2] = {{(void *)at, left / 2}, {(void *)(at + left / 2), left - left / 2}};
		ssize_t n = how == 0 ? write(fd, at, left) : how == 1 ? send(fd, at, left, MSG_NOSIGNAL) : writev(fd, iov, 2);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fail("write");
			break;
		}
		sent += n;
	}
	return sent;
}

/* Reads fd to EOF; returns the bytes read. */
static long drain(int fd, int how)
{
	char buf[4096];
	long got = 0;
	for (;;) {
		ssize_t n = how ? recv(fd, buf, sizeof(buf), 0) : read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail("read");
			break;
		}
		if (n == 0)
			break;
		got += n;
	}
	return got;
}

/* One round: connect, write, dup, close both, accept someone's connection, read it to EOF, close.
 * Adds to *written and *read; false if anything failed. */
static bool round_trip(struct listeners *l, int v6, int i, long *written, long *read)
{
	int c = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (c < 0) {
		fail("socket");
		return false;
	}
	if (connect(c, (struct sockaddr *)&l->addr[v6], l->len[v6]) != 0) {
		fail("connect");
		close(c);
		return false;
	}
	*written += send_message(c, i % 3);
	int copy = dup(c);
	if (copy < 0)
		fail("dup");
	if (i % 2) {
		close(copy);
		close(c);
	} else {
		close(c);
		close(copy);
	}
	int s = i % 2 ? accept4(l->fd[v6], NULL, NULL, SOCK_CLOEXEC) : accept(l->fd[v6], NULL, NULL);
	if (s < 0) {
		fail("accept");
		return false;
	}
	long got = drain(s, i % 2);
	if (got != MESSAGE_BYTES) {
		fprintf(stderr, "hammer[%d]: a connection carried %ld bytes\n", (int)getpid(), got);
		__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
	}
	*read += got;
	if (close(s) != 0)
		fail("close");
	return copy >= 0;
}

static void *worker(void *arg)
{
	int id = (int)(long)arg;
	long written = 0, got = 0;
	for (int i = 0; i < ITERATIONS; i++)
		round_trip(&shared, (i + id) % 2, i + id, &written, &got);
	__atomic_add_fetch(&bytes_written, written, __ATOMIC_RELAXED);
	__atomic_add_fetch(&bytes_read, got, __ATOMIC_RELAXED);
	return NULL;
}

/* A child: drops the sockets it inherited (the workers' connections must see EOF when they close
 * them), then works alone on its own listeners. */
static int child(int k)
{
	alarm(DEADLINE_S);
	failures = 0; /* the parent's count came along */
	if (close_range(3, ~0U, 0) != 0) {
		fail("close_range");
		return 1;
	}
	struct listeners own;
	if (!listen_on(&own))
		return 1;
	long written = 0, got = 0;
	for (int i = 0; i < CHILD_ITERATIONS; i++)
		if (!round_trip(&own, (i + k) % 2, i, &written, &got))
			return 1;
	return failures == 0 && written == (long)CHILD_ITERATIONS * MESSAGE_BYTES && got == written ? 0 : 1;
}

static void *forker(void *arg)
{
	(void)arg;
	for (int k = 0; k < CHILDREN; k++) {
		pid_t pid = fork();
		if (pid < 0) {
			fail("fork");
			continue;
		}
		if (pid == 0)
			_exit(child(k));
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "hammer: child %d failed (status 0x%x)\n", k, status);
			__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

int main(void)
{
	signal(SIGALRM, on_deadline);
	alarm(DEADLINE_S);
	signal(SIGPIPE, SIG_IGN);
	int open_at_start = open_descriptors();
	if (!listen_on(&shared))
		return 1;

	pthread_t threads[WORKERS + 1];
	for (long i = 0; i < WORKERS; i++)
		if (pthread_create(&threads[i], NULL, worker, (void *)i) != 0)
			return 1;
	if (pthread_create(&threads[WORKERS], NULL, forker, NULL) != 0)
		return 1;
	for (int i = 0; i <= WORKERS; i++)
		pthread_join(threads[i], NULL);
	close(shared.fd[0]);
	close(shared.fd[1]);

	int open_at_end = open_descriptors();
	long expected = (long)WORKERS * ITERATIONS * MESSAGE_BYTES;
	bool ok = failures == 0 && bytes_written == expected && bytes_read == bytes_written &&
		  open_at_end == open_at_start;
	if (!ok) {
		printf("failed: failures=%ld written=%ld read=%ld expected=%ld descriptors=%d then %d\n", failures,
		       bytes_written, bytes_read, expected, open_at_start, open_at_end);
		return 1;
	}
	printf("ok bytes=%ld\n", bytes_read);
	return 0;
}
