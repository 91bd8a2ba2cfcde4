/* linger_probe: one loopback connection whose server side closes with the client's request unread,
 * the case where the kernel's close sends RST. Client and server are both in this process; the
 * client never closes before the server's close has returned, so that close cannot have waited for it.
 *
 *   linger_probe [-6] [-u UNREAD] [-a ANSWER] SCENARIO
 * The client sends UNREAD bytes (default 5000) that the server never reads (it waits until they are
 * all queued), the server writes ANSWER bytes (default 1000), then:
 *   plain     close(server). Prints "close rc=N errno=E", "same_number=0|1" (a new socket() gets the
 *             number just closed), then what the client read: "peer got=N end=eof|ECONNRESET|..."
 *   dup       d = dup(server), close(server), then both directions through d: "dup sent=ok|failed"
 *             (the client read it) and "dup received=N" (UNREAD + the client's 4 bytes)
 *   nolinger  SO_LINGER {1, 0}, then close(server): the program asks for RST itself
 *   nolinger_listener  the same, SO_LINGER {1, 0} set on the listener before the client connects
 *             (the kernel copies it to the accepted socket)
 *   nolinger_dup_listener  set through a dup() of the listener, before the client connects
 *   nolinger_queued  set on the listener, the client connects, then the listener's is turned off
 *             ({0, 0}) before the accept: the queued connection keeps the copy it got, on
 *   nolinger_syscall  SO_LINGER {1, 0} set with syscall(SYS_setsockopt), which no hook sees
 *   nolinger_undone  SO_LINGER {1, 0}, then {0, 0}, then close(server): an ordinary close again
 *   drained   the program lingers itself, as Apache does: shutdown(SHUT_WR), the client reads to EOF
 *             and closes, the server reads everything to EOF ("server drained=N eof=1"), then closes
 * Other ways of giving up the server's only descriptor, each printing what the call returned, then
 * what the client read as in plain:
 *   dup2, dup3   /dev/null copied over it, the socket registered in an epoll set for input (which is
 *                waiting): "dup2 rc=fd|N errno=E", then "epoll_events=N" (what the set still reports)
 *   dup2bad      a dup2() from a closed number onto it, which fails and must change nothing: the
 *                epoll set still reports it, it still answers ("dup2bad sent=ok"), then close()
 *   fclose       4 more bytes through fdopen(), left in the FILE's buffer for fclose() to write:
 *                "fclose rc=N errno=E", then "same_number=0|1" as in plain
 *   fclose_epipe the program shut down its sending side first, so fclose()'s flush fails
 *   freopen      4 more bytes through fdopen(), then freopen("/dev/null"): "freopen ok=0|1", fclose
 * And a close with nothing unread that still loses data:
 *   stdio_read   the server reads the UNREAD bytes, answers again, and 5 ms later reads the client's
 *                next line through a stdio stream (fdopen, fgets: glibc's own read, which no hook
 *                counts); then close(server), and the client sends 1000 bytes, and 50 ms later
 *                1000 more: "close rc=N errno=E", "peer send=ok|ECONNRESET|EPIPE" (how the second
 *                send ended), then what the client read as in plain
 *   raw_read     the same, the line read with syscall(SYS_read), which no hook counts either
 * Exits 0 when the scenario ran (whatever the client saw), 2 on a setup failure. alarm(10) bounds it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *errno_name(int err)
{
	switch (err) {
	case 0: return "0";
	case ECONNRESET: return "ECONNRESET";
	case EPIPE: return "EPIPE";
	case EBADF: return "EBADF";
	default: return strerror(err);
	}
}

static void die(const char *what)
{
	fprintf(stderr, "linger_probe: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void pause_ms(long ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

static void send_all(int fd, size_t bytes, char fill)
{
	char buf[4096];
	memset(buf, fill, sizeof(buf));
	for (size_t sent = 0; sent < bytes;) {
		ssize_t n = send(fd, buf, bytes - sent < sizeof(buf) ? bytes - sent : sizeof(buf), MSG_NOSIGNAL);
		if (n <= 0)
			die("send");
		sent += (size_t)n;
	}
}

/* Waits (at most 2 s) until fd has `bytes` unread bytes queued. */
static void wait_queued(int fd, int bytes)
{
	int queued = 0;
	for (int i = 0; i < 200 && ioctl(fd, FIONREAD, &queued) == 0 && queued < bytes; i++)
		pause_ms(10);
	if (queued != bytes) {
		fprintf(stderr, "linger_probe: %d of %d bytes queued\n", queued, bytes);
		exit(2);
	}
}

/* Reads until EOF or an error (each wait bounded to 3 s); returns the bytes, and how it ended. */
static size_t read_to_end(int fd, const char **end)
{
	char buf[65536];
	size_t got = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 3000) != 1) {
			*end = "timeout";
			return got;
		}
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0) {
			*end = "eof";
			return got;
		}
		if (n < 0) {
			*end = errno_name(errno);
			return got;
		}
		got += (size_t)n;
	}
}

/* Reads exactly `bytes` (or fewer on EOF, an error, or 3 s without data). */
/* SO_LINGER {on, 0} */
static int set_linger(int fd, int on)
{
	return setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){on, 0}, sizeof(struct linger));
}

static size_t read_exactly(int fd, size_t bytes)
{
	char buf[65536];
	size_t got = 0;
	while (got < bytes) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 3000) != 1)
			break;
		ssize_t n = recv(fd, buf, bytes - got < sizeof(buf) ? bytes - got : sizeof(buf), 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

int main(int argc, char **argv)
{
	int ipv6 = 0, opt;
	int unread = 5000;
	size_t answer = 1000;
	while ((opt = getopt(argc, argv, "6u:a:")) != -1) {
		if (opt == '6')
			ipv6 = 1;
		else if (opt == 'u')
			unread = atoi(optarg);
		else if (opt == 'a')
			answer = strtoul(optarg, NULL, 10);
		else
			return 2;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: linger_probe [-6] [-u UNREAD] [-a ANSWER] plain|dup|nolinger|"
				"nolinger_listener|nolinger_dup_listener|nolinger_queued|nolinger_syscall|nolinger_undone|drained|"
				"dup2|dup3|dup2bad|fclose|fclose_epipe|freopen|stdio_read|raw_read\n");
		return 2;
	}
	const char *scenario = argv[optind];
	signal(SIGPIPE, SIG_IGN);
	alarm(10);

	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr *addr = ipv6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4;
	socklen_t len = ipv6 ? sizeof(a6) : sizeof(a4);
	int listener = socket(addr->sa_family, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, addr, len) != 0 || listen(listener, 4) != 0 ||
	    getsockname(listener, addr, &len) != 0)
		die("listen");
	int listener_copy = !strcmp(scenario, "nolinger_dup_listener") ? dup(listener) : listener;
	if ((!strcmp(scenario, "nolinger_listener") || !strcmp(scenario, "nolinger_queued") ||
	     !strcmp(scenario, "nolinger_dup_listener")) && set_linger(listener_copy, 1) != 0)
		die("SO_LINGER");
	int client = socket(addr->sa_family, SOCK_STREAM, 0);
	if (client < 0 || connect(client, addr, len) != 0)
		die("connect");
	if (!strcmp(scenario, "nolinger_queued") && set_linger(listener, 0) != 0)
		die("SO_LINGER");
	int server = accept(listener, NULL, NULL);
	if (server < 0)
		die("accept");

	send_all(client, (size_t)unread, 'q');
	wait_queued(server, unread);
	send_all(server, answer, 'a');

	const char *end = "none";
	if (!strcmp(scenario, "plain") || !strncmp(scenario, "nolinger", 8)) {
		if ((!strcmp(scenario, "nolinger") || !strcmp(scenario, "nolinger_undone")) && set_linger(server, 1) != 0)
			die("SO_LINGER");
		if (!strcmp(scenario, "nolinger_undone") && set_linger(server, 0) != 0)
			die("SO_LINGER");
		if (!strcmp(scenario, "nolinger_syscall") &&
		    syscall(SYS_setsockopt, server, SOL_SOCKET, SO_LINGER, &(struct linger){1, 0}, sizeof(struct linger)) != 0)
			die("SO_LINGER");
		errno = 0;
		int rc = close(server);
		printf("close rc=%d errno=%s\n", rc, rc == 0 ? "0" : errno_name(errno));
		int fresh = socket(addr->sa_family, SOCK_STREAM, 0);
		printf("same_number=%d\n", fresh == server);
		close(fresh);
		size_t got = read_to_end(client, &end);
		printf("peer got=%zu end=%s\n", got, end);
	} else if (!strcmp(scenario, "dup")) {
		int copy = dup(server);
		if (copy < 0)
			die("dup");
		errno = 0;
		int rc = close(server);
		printf("close rc=%d errno=%s\n", rc, rc == 0 ? "0" : errno_name(errno));
		/* The answer went out before the close; then 4 more bytes through the copy. */
		send_all(copy, 4, 'd');
		printf("dup sent=%s\n", read_exactly(client, answer + 4) == answer + 4 ? "ok" : "failed");
		send_all(client, 4, 'c');
		printf("dup received=%zu\n", read_exactly(copy, (size_t)unread + 4));
		close(copy);
		size_t got = read_to_end(client, &end);
		printf("peer got=%zu end=%s\n", got, end);
	} else if (!strcmp(scenario, "drained")) {
		if (shutdown(server, SHUT_WR) != 0)
			die("shutdown");
		size_t got = read_to_end(client, &end);
		printf("peer got=%zu end=%s\n", got, end);
		close(client);
		client = -1;
		size_t drained = read_to_end(server, &end);
		printf("server drained=%zu eof=%d\n", drained, !strcmp(end, "eof"));
		close(server);
	} else if (!strcmp(scenario, "dup2") || !strcmp(scenario, "dup3") || !strcmp(scenario, "dup2bad")) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC), ep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event e = {.events = EPOLLIN, .data.fd = server};
		if (null < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, server, &e) != 0)
			die("epoll");
		int from = !strcmp(scenario, "dup2bad") ? null + 100 : null; /* a number nothing has */
		errno = 0;
		int rc = !strcmp(scenario, "dup3") ? dup3(from, server, O_CLOEXEC) : dup2(from, server);
		char rc_text[16];
		snprintf(rc_text, sizeof(rc_text), "%d", rc);
		printf("%s rc=%s errno=%s\n", scenario, rc == server ? "fd" : rc_text, errno_name(errno));
		printf("epoll_events=%d\n", epoll_wait(ep, &e, 1, 0));
		if (rc < 0) {
			send_all(server, 4, 'd');
			printf("dup2bad sent=%s\n", read_exactly(client, answer + 4) == answer + 4 ? "ok" : "failed");
		}
		close(server);
		close(null);
		close(ep);
		size_t got = read_to_end(client, &end);
		printf("peer got=%zu end=%s\n", got, end);
	} else if (!strcmp(scenario, "fclose") || !strcmp(scenario, "fclose_epipe") || !strcmp(scenario, "freopen")) {
		if (!strcmp(scenario, "fclose_epipe") && shutdown(server, SHUT_WR) != 0)
			die("shutdown");
		FILE *f = fdopen(server, "w");
		if (!f || fputs("tail", f) == EOF)
			die("fdopen");
		if (!strcmp(scenario, "freopen")) {
			f = freopen("/dev/null", "w", f);
			printf("freopen ok=%d\n", f != NULL);
		}
		errno = 0;
		int rc = f ? fclose(f) : 0;
		printf("fclose rc=%d errno=%s\n", rc, errno_name(errno));
		int fresh = socket(addr->sa_family, SOCK_STREAM, 0);
		printf("same_number=%d\n", fresh == server);
		close(fresh);
		size_t got = read_to_end(client, &end);
		printf("peer got=%zu end=%s\n", got, end);
	} else if (!strcmp(scenario, "stdio_read") || !strcmp(scenario, "raw_read")) {
		if (read_exactly(server, (size_t)unread) != (size_t)unread)
			die("read the request");
		send_all(server, answer, 'a');
		pause_ms(5); /* a tick of the kernel's millisecond clock: the line is newer than the answer */
		if (send(client, "line\n", 5, 0) != 5)
			die("send a line");
		char line[16];
		if (!strcmp(scenario, "raw_read")) {
			if (syscall(SYS_read, server, line, 5) != 5)
				die("syscall(SYS_read)");
		} else {
			FILE *f = fdopen(server, "r");
			if (!f || !fgets(line, sizeof(line), f))
				die("fgets");
		}
		errno = 0;
		int rc = close(server); /* the stream is left as it is: its descriptor is gone */
		printf("close rc=%d errno=%s\n", rc, rc == 0 ? "0" : errno_name(errno));
		send_all(client, 1000, 'm');
		pause_ms(50);
		char more[1000] = {0};
		ssize_t sent = send(client, more, sizeof(more), MSG_NOSIGNAL);
		printf("peer send=%s\n", sent == (ssize_t)sizeof(more) ? "ok" : errno_name(errno));
		size_t got = read_to_end(client, &end);
		printf("peer got=%zu end=%s\n", got, end);
	} else {
		fprintf(stderr, "linger_probe: unknown scenario %s\n", scenario);
		return 2;
	}
	if (client >= 0)
		close(client);
	close(listener);
	return 0;
}
