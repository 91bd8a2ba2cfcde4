/* vfork_probe: does vfork() keep its meaning, and the descriptor table stay true in the parent?
 *
 *   vfork_probe SCENARIO
 * execfail  the idiom of reporting an exec failure through the parent's memory: the child sets
 *           exec_failed = 1 after execve of a path that does not exist, then _exit(127). Prints
 *           "exec_failed=1" under a real vfork, 0 where vfork() ran as fork().
 * guard     c is a connected socket whose peer closed (FIN). The child dup2()s /dev/null over c,
 *           closes c, opens a socket (on c's number, in its own table), closes every descriptor
 *           from 3 up with close_range() as Python's subprocess does, and _exit()s. Then the parent
 *           writes on c: "target rc=-1 errno=EPIPE" where the library still knows c (the CLOSE_WAIT
 *           guard; run with TCPRARE_CLOSEWAIT_IDLE_MS=0), "target rc=5 errno=0" without it.
 * guard-syscall  the same, the vfork made through syscall(): SYS_vfork, or SYS_clone with
 *           CLONE_VM | CLONE_VFORK where there is none (aarch64).
 * epoll     (for TCPRARE_LINGER=on) s is an accepted close-on-exec socket with unread input, in an
 *           epoll set of the parent. The child closes s and _exit()s. Prints "epoll events=N": 1 while the
 *           parent's registration of s lives (the epoll instance is shared with the child). Then a
 *           new connection, accepted after the vfork, closes with 5000 bytes unread: "peer
 *           end=eof" if that close lingered, "peer end=ECONNRESET" if it was a plain one.
 * keep      (for TCPRARE_LINGER=on) s is an accepted socket, not close-on-exec, whose client's
 *           request "request\n" is unread. The child execs sh, which waits 300 ms, reads the
 *           request from s and answers "answer\n" on it. The parent closes s at once, while the
 *           request is still unread: a lingering close would shut down and drain the socket under
 *           sh. Prints what the client read: "peer got=answer end=eof" when sh could answer.
 * stdio     as keep, but s is close-on-exec (accept4 SOCK_CLOEXEC) and the child dup2()s it onto
 *           sh's standard input and output, which clears close-on-exec on the copies.
 * SIGPIPE is ignored. Exits 0 when the scenario ran, 2 on a setup failure; alarm(10) bounds it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void die(const char *what)
{
	fprintf(stderr, "vfork_probe: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void pause_ms(long ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

static struct sockaddr_in addr = {.sin_family = AF_INET};
static socklen_t addr_len = sizeof(addr);
static int listener = -1;

static void listen_here(void)
{
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, addr_len) != 0 || listen(listener, 8) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0)
		die("listen");
}

/* A loopback connection: *client connected here, *server accepted here (with accept_flags). */
static void connect_pair(int *client, int *server, int accept_flags)
{
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&addr, addr_len) != 0)
		die("connect");
	*server = accept_flags ? accept4(listener, NULL, NULL, accept_flags) : accept(listener, NULL, NULL);
	if (*server < 0)
		die("accept");
}

/* Sends bytes on fd and waits until they are all queued at the other end, peer. */
static void send_queued(int fd, int peer, const char *data, size_t bytes)
{
	for (size_t sent = 0; sent < bytes;) {
		ssize_t n = send(fd, data + sent, bytes - sent, 0);
		if (n <= 0)
			die("send");
		sent += (size_t)n;
	}
	int queued = 0;
	for (int i = 0; i < 200 && ioctl(peer, FIONREAD, &queued) == 0 && queued < (int)bytes; i++)
		pause_ms(5);
}

/* Waits for the child, for 3 s at most: then kills it ("child killed"). */
static void wait_child(pid_t pid)
{
	int status;
	if (pid < 0)
		die("vfork");
	for (int i = 0; i < 300; i++) {
		pid_t done = waitpid(pid, &status, WNOHANG);
		if (done == pid)
			return;
		if (done < 0)
			die("waitpid");
		pause_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	printf("child killed\n");
}

/* Reads fd to its end (each wait bounded to 3 s): what arrived, then how it ended. */
static void print_peer(int fd)
{
	char got[256];
	size_t len = 0;
	const char *end = "endless";
	for (int reads = 0; reads < 1000; reads++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 3000) != 1) {
			end = "timeout";
			break;
		}
		char buf[4096];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			end = n == 0 ? "eof" : errno == ECONNRESET ? "ECONNRESET" : strerror(errno);
			break;
		}
		for (ssize_t i = 0; i < n && len < sizeof(got) - 1; i++)
			if (buf[i] != '\n')
				got[len++] = buf[i];
	}
	got[len] = '\0';
	printf("peer got=%s end=%s\n", got, end);
	fflush(stdout);
}

static int exec_failure(void)
{
	volatile int exec_failed = 0; /* the parent's: the child writes it before its exec fails */
	char *const argv[] = {"tcprare-no-such-program", NULL};
	pid_t pid = vfork();
	if (pid == 0) {
		execve("/nonexistent/tcprare-no-such-program", argv, environ);
		exec_failed = 1;
		_exit(127);
	}
	wait_child(pid);
	printf("exec_failed=%d\n", exec_failed);
	return 0;
}

static int child_closes_guarded(bool through_syscall)
{
	int c, server;
	char buf[5];
	connect_pair(&c, &server, 0);
	/* read whole by the server, so that its close sends FIN, not RST */
	if (write(c, "hello", 5) != 5 || read(server, buf, 5) != 5)
		die("greeting");
	close(server);
	pause_ms(100);
	int null = open("/dev/null", O_WRONLY);
	if (null < 0)
		die("/dev/null");
	/* In this very function: the child returns into its frame, as from vfork(). */
#ifdef SYS_vfork
	pid_t pid = through_syscall ? (pid_t)syscall(SYS_vfork) : vfork();
#else
	pid_t pid = through_syscall ? (pid_t)syscall(SYS_clone, CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0) : vfork();
#endif
	if (pid == 0) {
		dup2(null, c);
		close(c);
		socket(AF_INET, SOCK_STREAM, 0);
		close_range(3, ~0U, 0);
		_exit(0);
	}
	wait_child(pid);
	errno = 0;
	ssize_t rc = write(c, "data1", 5);
	printf("target rc=%zd errno=%s\n", rc, rc >= 0 ? "0" : errno == EPIPE ? "EPIPE" : strerror(errno));
	return 0;
}

static int child_closes_in_epoll(void)
{
	static char request[5000];
	int client, s;
	connect_pair(&client, &s, SOCK_CLOEXEC); /* a child that execs would not keep it */
	send_queued(client, s, request, 100);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event e = {.events = EPOLLIN, .data.fd = s};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s, &e) != 0)
		die("epoll");
	pid_t pid = vfork();
	if (pid == 0) {
		close(s);
		_exit(0);
	}
	wait_child(pid);
	printf("epoll events=%d\n", epoll_wait(ep, &e, 1, 1000));

	int client2, s2;
	connect_pair(&client2, &s2, 0);
	send_queued(client2, s2, request, sizeof(request));
	if (write(s2, "answer\n", 7) != 7)
		die("answer");
	close(s2);
	print_peer(client2);
	return 0;
}

/* keep and stdio: sh answers on the socket the parent has closed. */
static int exec_keeps_socket(bool on_stdio)
{
	int client, s;
	connect_pair(&client, &s, on_stdio ? SOCK_CLOEXEC : 0);
	char script[128];
	if (on_stdio)
		snprintf(script, sizeof(script), "sleep 0.3; read line; echo answer");
	else
		snprintf(script, sizeof(script), "sleep 0.3; read line <&%d; echo answer >&%d", s, s);
	char *const argv[] = {"sh", "-c", script, NULL};
	send_queued(client, s, "request\n", 8);
	pid_t pid = vfork();
	if (pid == 0) {
		if (on_stdio && (dup2(s, 0) != 0 || dup2(s, 1) != 1))
			_exit(126);
		execve("/bin/sh", argv, environ);
		_exit(127);
	}
	if (pid < 0)
		die("vfork");
	close(s); /* the request is unread: a close that thinks the socket is ours alone would linger */
	print_peer(client);
	wait_child(pid);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: vfork_probe execfail|guard|guard-syscall|epoll|keep|stdio\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	alarm(10);
	listen_here();
	const char *scenario = argv[1];
	if (!strcmp(scenario, "execfail"))
		return exec_failure();
	if (!strcmp(scenario, "guard") || !strcmp(scenario, "guard-syscall"))
		return child_closes_guarded(!strcmp(scenario, "guard-syscall"));
	if (!strcmp(scenario, "epoll"))
		return child_closes_in_epoll();
	if (!strcmp(scenario, "keep"))
		return exec_keeps_socket(false);
	if (!strcmp(scenario, "stdio"))
		return exec_keeps_socket(true);
	fprintf(stderr, "vfork_probe: unknown scenario %s\n", scenario);
	return 2;
}
