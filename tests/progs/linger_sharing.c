/* linger_sharing: a server closes a connection that someone else is still answering on, the two
 * cases where a lingering close must not touch the socket: the kernel keeps it open for them.
 *
 *   linger_sharing CHILD_MAKER   fork-per-connection without fork handlers: the server makes a child
 *                                with CHILD_MAKER (_Fork, clone, sys_fork, sys_clone, sys_clone3)
 *                                after greeting the client ("hello\n"), and closes its copy at once,
 *                                the client's request unread; the child reads the request and
 *                                answers 1 MiB. Prints "child write=ok" (or the error) and
 *                                "client got=N end=eof|ECONNRESET|..." (N: 1048582 in all).
 *   linger_sharing bystander     a child made with _Fork() before the connection holds nothing of it:
 *                                the server answers 100000 bytes and closes, the client's request
 *                                unread, the client reads only then. Prints "client got=N end=...":
 *                                a plain close sends RST (ECONNRESET), a lingering one a FIN (eof).
 *   linger_sharing writer        thread B is blocked in a write() of 8 MiB on the connection when
 *                                thread A reads the client's latest message and closes it (the
 *                                client may still send: that close lingers); the client starts
 *                                reading only afterwards.
 *                                Prints "client got=N end=..." and "writer wrote=N" (the kernel
 *                                keeps the socket until B's write is done: 8388608, eof, 8388608).
 *   linger_sharing cancelled     as writer, but the blocked writer thread is cancelled
 *                                (pthread_cancel) before the close: "client ... end=eof" and
 *                                "writer cancelled". Then a second connection takes the same
 *                                number ("same_number=1"), its server answers 6 bytes and closes
 *                                with the client's request unread: "client got=6 end=eof" if that
 *                                close lingered, ECONNRESET if it was a plain one.
 * Client and server are in this process; the child holds the client's descriptor too and leaves it
 * alone. Exits 0 when the scenario ran, 2 on a setup failure; alarm(20) bounds it. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef SYS_clone3
#include <linux/sched.h>
#endif

#define ANSWER_BYTES (1 << 20)
#define WRITER_BYTES (8 << 20)
#define REQUEST_BYTES 100

static void die(const char *what)
{
	fprintf(stderr, "linger_sharing: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void pause_ms(long ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* A connected pair over loopback: *client connected, *server accepted. */
static void connect_pair(int *client, int *server)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(listener, 1) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
		die("listen");
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		die("connect");
	*server = accept(listener, NULL, NULL);
	if (*server < 0)
		die("accept");
	close(listener);
}

/* Reads to EOF or an error (each wait bounded to 5 s) and prints what the client got. */
static void client_reads(int fd)
{
	static char buf[65536];
	long long got = 0;
	const char *end = "timeout";
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 5000) != 1)
			break;
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n > 0) {
			got += n;
			continue;
		}
		end = n == 0 ? "eof" : errno == ECONNRESET ? "ECONNRESET" : strerror(errno);
		break;
	}
	printf("client got=%lld end=%s\n", got, end);
}

static const char *write_all(int fd, size_t bytes)
{
	static char buf[65536];
	for (size_t sent = 0; sent < bytes;) {
		ssize_t n = send(fd, buf, bytes - sent < sizeof(buf) ? bytes - sent : sizeof(buf), MSG_NOSIGNAL);
		if (n <= 0)
			return n == 0 ? "short" : strerror(errno);
		sent += (size_t)n;
	}
	return "ok";
}

/* --- fork-per-connection, the child made without fork handlers --- */

static int child_conn;

/* The child waits a little (the parent's close has long returned by then), reads the request, and
 * answers. Its exit status says how the answer went. */
static int child_answers(void *unused)
{
	(void)unused;
	char request[REQUEST_BYTES];
	struct pollfd p = {.fd = child_conn, .events = POLLIN};
	pause_ms(200);
	ssize_t unused_read = poll(&p, 1, 2000) == 1 ? read(child_conn, request, sizeof(request)) : 0;
	(void)unused_read; /* what it reads does not matter, only that it is read */
	const char *result = write_all(child_conn, ANSWER_BYTES);
	close(child_conn);
	_exit(strcmp(result, "ok") == 0 ? 0 : 1);
}

static pid_t make_child(const char *maker)
{
	pid_t pid = -1;
	if (strcmp(maker, "_Fork") == 0) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
		pid = _Fork();
#else
		errno = ENOSYS;
#endif
	} else if (strcmp(maker, "clone") == 0) {
		size_t size = 256 * 1024;
		char *stack = malloc(size);
		return stack ? clone(child_answers, stack + size, SIGCHLD, NULL) : -1;
#ifdef SYS_fork
	} else if (strcmp(maker, "sys_fork") == 0) {
		pid = (pid_t)syscall(SYS_fork);
#endif
	} else if (strcmp(maker, "sys_clone") == 0) {
		pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
#ifdef SYS_clone3
	} else if (strcmp(maker, "sys_clone3") == 0) {
		struct clone_args args = {.exit_signal = SIGCHLD};
		pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
#endif
	} else {
		fprintf(stderr, "linger_sharing: unknown scenario %s\n", maker);
		exit(2);
	}
	if (pid == 0)
		child_answers(NULL);
	return pid;
}

static void fork_per_connection(const char *maker)
{
	int client;
	char request[REQUEST_BYTES];
	memset(request, 'q', sizeof(request));
	connect_pair(&client, &child_conn);
	if (write(client, request, sizeof(request)) != sizeof(request))
		die("request");
	pause_ms(50); /* queued, unread, at the server side: a plain close would send RST */
	if (write(child_conn, "hello\n", 6) != 6) /* and throw the greeting away with it */
		die("greeting");
	pid_t child = make_child(maker);
	if (child < 0)
		die(maker);
	close(child_conn); /* the parent's copy: the child answers on its own */
	client_reads(client);
	int status;
	if (waitpid(child, &status, 0) != child)
		die("waitpid");
	printf("child write=%s\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failed");
}

/* --- a child that holds nothing of the connection --- */

static void bystander_child(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
	pid_t child = _Fork();
#else
	pid_t child = (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
#endif
	if (child < 0)
		die("_Fork");
	if (child == 0) {
		pause_ms(5000);
		_exit(0);
	}
	int client, server;
	char request[REQUEST_BYTES];
	memset(request, 'q', sizeof(request));
	connect_pair(&client, &server);
	if (write(client, request, sizeof(request)) != sizeof(request))
		die("request");
	pause_ms(50);
	printf("server wrote=%s\n", write_all(server, 100000));
	close(server);
	pause_ms(200);
	client_reads(client);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

/* --- a write in progress when another thread closes --- */

static int writer_conn;
static ssize_t writer_wrote;

static void *writer(void *unused)
{
	(void)unused;
	static char buf[WRITER_BYTES];
	writer_wrote = write(writer_conn, buf, sizeof(buf));
	return NULL;
}

static void close_while_writing(bool cancel)
{
	int client;
	pthread_t thread;
	connect_pair(&client, &writer_conn);
	if (pthread_create(&thread, NULL, writer, NULL) != 0)
		die("pthread_create");
	pause_ms(100);
	char message[10] = "more?";
	if (write(client, message, sizeof(message)) != sizeof(message))
		die("message");
	pause_ms(100); /* the writer has filled the socket's buffers and waits for room */
	if (read(writer_conn, message, sizeof(message)) != sizeof(message))
		die("read");
	if (cancel) {
		pthread_cancel(thread);
		pthread_join(thread, NULL);
	}
	close(writer_conn);
	pause_ms(200);
	client_reads(client);
	if (cancel) {
		printf("writer cancelled\n");
		int number = writer_conn, server;
		char request[REQUEST_BYTES] = {0};
		close(client);
		connect_pair(&client, &server);
		printf("same_number=%d\n", server == number);
		if (write(client, request, sizeof(request)) != sizeof(request))
			die("request");
		pause_ms(50);
		if (write(server, "answer", 6) != 6)
			die("answer");
		close(server);
		pause_ms(100);
		client_reads(client);
		return;
	}
	pthread_join(thread, NULL);
	printf("writer wrote=%zd\n", writer_wrote);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGPIPE, SIG_IGN);
	alarm(20);
	if (argc != 2) {
		fprintf(stderr, "usage: linger_sharing _Fork|clone|sys_fork|sys_clone|sys_clone3|bystander|writer|cancelled\n");
		return 2;
	}
	if (strcmp(argv[1], "writer") == 0 || strcmp(argv[1], "cancelled") == 0)
		close_while_writing(strcmp(argv[1], "cancelled") == 0);
	else if (strcmp(argv[1], "bystander") == 0)
		bystander_child();
	else
		fork_per_connection(argv[1]);
	return 0;
}
