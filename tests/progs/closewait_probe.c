/* closewait_probe: a client and the server it talks to, in one process, for the CLOSE_WAIT tests.
 * The server reads the client's greeting, waits for its idle timeout and closes (or only shuts down
 * its sending side with -H); after a pause the client writes twice through one entry point and
 * reports each result:
 *   write1 rc=N errno=NAME sigpipe=K
 *   write2 rc=N errno=NAME sigpipe=K
 * Without tcprare write1 "succeeds" into the closed connection (the bytes are lost) and only write2
 * fails; with it write1 fails. With -H the server then reports what reached it: "server got N".
 *
 *   closewait_probe [-6] [-m METHOD] [-c CONNECT] [-n] [-i] [-k] [-b] [-q] [-e] [-f] [-H] [-w IDLE_MS]
 *                   [-p PAUSE_MS] [-g GAP_MS]
 * METHOD: write writev send sendto sendmsg sendmmsg sendfile splice dprintf vdprintf (default write),
 *   or through stdio on a stream fdopen(3)ed on the socket, each followed by fflush (their lines end in
 *   " ferror=0|1"): fprintf fputs fwrite fputc putc vfprintf fputs_unlocked fprintf_chk; fflush (the
 *   data put in with inlined putc_unlocked, no call); fclose (with -B: what it left buffered; rc is
 *   fclose's); and on stdout, the socket dup2()ed onto it: printf puts putchar vprintf
 * CONNECT: how the client connects: connect (the default); fastopen, sendto(MSG_FASTOPEN) with the
 *   greeting; eintr, a connect() interrupted by a signal, which the kernel then completes (the
 *   listener's queue is full until the signal: run with TCPRARE_BACKLOG=off)
 * -n MSG_NOSIGNAL   -i SIGPIPE ignored   -k SIGPIPE left at its default (kills)   -b non-blocking
 * -q the server sends data the client never reads, right after the greeting (the client ignores it)
 * -F the server says goodbye as it closes, after its idle timeout (SMTP's "421"); the client never reads it
 * -e the client reads to EOF first   -f no greeting: the write after the pause is the socket's first
 * -H server half-closes and reads   -w the server's idle timeout (default 300 ms; 0: it closes at once)
 * -p the client's pause after the close (default 100 ms)   -g between its two writes (default 50 ms)
 * -R the server stays open; the client shuts down its reading side through a dup of its socket
 *    (POLLRDHUP without any FIN: the writes must go through)
 * -B while the server waits out its idle timeout, the client puts a byte into its stdio stream every
 *    50 ms, which stays in the buffer: the connection is quiet all the same */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int sig) { (void)sig, sigpipes++; }

static const char *method = "write";
static int nosignal;
static FILE *reports; /* the original stdout: the stdout methods put the socket there */
static FILE *stream;  /* the stdio methods' stream on the socket */

/* The setup's own transfers, on loopback: each moves its few bytes whole, or the probe cannot go on. */
static void setup_io(ssize_t moved, size_t len, const char *what)
{
	if (moved != (ssize_t)len) {
		perror(what);
		exit(1);
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
	nanosleep(&ts, NULL);
}

static int print_v(int (*vprint)(FILE *, const char *, va_list), const char *format, ...)
{
	va_list args;
	va_start(args, format);
	int rc = vprint ? vprint(stream, format, args) : vprintf(format, args);
	va_end(args);
	return rc;
}

static int dprint_v(int fd, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	int rc = vdprintf(fd, format, args);
	va_end(args);
	return rc;
}

#ifdef __GLIBC__
extern int __fprintf_chk(FILE *, int, const char *, ...);
#endif

/* The stdio methods: a stream on the socket, made on first use; then the call, and fflush. */
static int on_stdout(const char *m)
{
	return !strcmp(m, "printf") || !strcmp(m, "puts") || !strcmp(m, "putchar") || !strcmp(m, "vprintf");
}

static FILE *socket_stream(int fd)
{
	if (!stream && on_stdout(method)) {
		dup2(fd, 1);
		stream = stdout;
	} else if (!stream)
		stream = fdopen(fd, "w");
	return stream;
}

static ssize_t write_stdio(int fd, const char *data, size_t len)
{
	int failed = 0;
	if (!strcmp(method, "fclose")) { /* what -B left in the buffer; the second time, nothing is open */
		int rc = stream ? fclose(stream) : (errno = EBADF, EOF);
		stream = NULL;
		return rc == EOF ? -1 : 0;
	}
	socket_stream(fd);
	if (!strcmp(method, "fprintf"))
		failed = fprintf(stream, "%.*s", (int)len, data) < 0;
	else if (!strcmp(method, "fputs") || !strcmp(method, "puts")) {
		char text[64];
		snprintf(text, sizeof(text), "%.*s", (int)len - (method[0] == 'p'), data); /* puts adds "\n" */
		failed = method[0] == 'p' ? puts(text) == EOF : fputs(text, stream) == EOF;
	} else if (!strcmp(method, "fputs_unlocked")) {
		char text[64];
		snprintf(text, sizeof(text), "%.*s", (int)len, data);
		failed = fputs_unlocked(text, stream) == EOF;
	} else if (!strcmp(method, "fwrite"))
		failed = fwrite(data, 1, len, stream) != len;
	else if (!strcmp(method, "vfprintf"))
		failed = print_v(vfprintf, "%.*s", (int)len, data) < 0;
	else if (!strcmp(method, "vprintf"))
		failed = print_v(NULL, "%.*s", (int)len, data) < 0;
	else if (!strcmp(method, "printf"))
		failed = printf("%.*s", (int)len, data) < 0;
#ifdef __GLIBC__
	else if (!strcmp(method, "fprintf_chk"))
		failed = __fprintf_chk(stream, 1, "%.*s", (int)len, data) < 0;
#endif
	else if (!strcmp(method, "fflush"))
		for (size_t i = 0; i < len; i++)
			putc_unlocked(data[i], stream); /* a macro: into the buffer, no call */
	else
		for (size_t i = 0; i < len && !failed; i++)
			failed = (!strcmp(method, "fputc")  ? fputc(data[i], stream)
				  : !strcmp(method, "putc") ? putc(data[i], stream)
							    : putchar(data[i])) == EOF;
	if (failed || fflush(stream) == EOF)
		return -1;
	return (ssize_t)len;
}

static int is_stdio(const char *m)
{
	return on_stdout(m) || !strncmp(m, "fp", 2) || !strncmp(m, "fw", 2) || !strncmp(m, "fflush", 6) ||
	       !strcmp(m, "putc") || !strcmp(m, "vfprintf") || !strcmp(m, "fclose");
}

static ssize_t write_with(int fd, const char *data, size_t len)
{
	int flags = nosignal ? MSG_NOSIGNAL : 0;
	struct iovec iov = {(void *)data, len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (!strcmp(method, "write"))
		return write(fd, data, len);
	if (!strcmp(method, "writev"))
		return writev(fd, &iov, 1);
	if (!strcmp(method, "send"))
		return send(fd, data, len, flags);
	if (!strcmp(method, "sendto"))
		return sendto(fd, data, len, flags, NULL, 0);
	if (!strcmp(method, "sendmsg"))
		return sendmsg(fd, &msg, flags);
	if (!strcmp(method, "sendmmsg")) {
		struct mmsghdr m = {.msg_hdr = msg};
		int n = sendmmsg(fd, &m, 1, flags);
		return n == 1 ? (ssize_t)m.msg_len : n;
	}
	if (is_stdio(method))
		return write_stdio(fd, data, len);
	if (!strcmp(method, "dprintf"))
		return dprintf(fd, "%.*s", (int)len, data);
	if (!strcmp(method, "vdprintf"))
		return dprint_v(fd, "%.*s", (int)len, data);
	if (!strcmp(method, "splice")) {
		int pipe_fds[2];
		if (pipe(pipe_fds) != 0 || write(pipe_fds[1], data, len) != (ssize_t)len)
			return -2;
		ssize_t rc = splice(pipe_fds[0], NULL, fd, NULL, len, 0);
		int saved = errno;
		close(pipe_fds[0]);
		close(pipe_fds[1]);
		errno = saved;
		return rc;
	}
	if (!strcmp(method, "sendfile")) {
		int file = memfd_create("payload", 0);
		ssize_t rc;
		if (file < 0 || write(file, data, len) != (ssize_t)len)
			return -2;
		off_t off = 0;
		rc = sendfile(fd, file, &off, len);
		int saved = errno;
		close(file);
		errno = saved;
		return rc;
	}
	fprintf(stderr, "closewait_probe: unknown method %s\n", method);
	exit(2);
}

static void report(int n, ssize_t rc, int err)
{
	fprintf(reports, "write%d rc=%zd errno=%s sigpipe=%d", n, rc,
		rc >= 0 ? "0" : err == EPIPE ? "EPIPE" : err == ECONNRESET ? "ECONNRESET" : err == EAGAIN ? "EAGAIN" : strerror(err),
		(int)sigpipes);
	if (stream)
		fprintf(reports, " ferror=%d", ferror(stream) != 0);
	fputc('\n', reports);
	fflush(reports);
}

static void on_alarm(int sig) { (void)sig; }

/* The client's connect(), as -c says; 0 or -1. The listener's queue is full for "eintr": the SYN is
 * dropped, and connect() waits for its retransmission, a second later, until the alarm interrupts
 * it; then the listener takes the connection that filled it, and the retransmitted SYN gets in. */
static int connect_client(const char *how, int client, int listener, struct sockaddr *addr, socklen_t len)
{
	if (!strcmp(how, "fastopen"))
		return sendto(client, "hello", 5, MSG_FASTOPEN, addr, len) == 5 ? 0 : -1;
	if (!strcmp(how, "connect"))
		return connect(client, addr, len);
	int filler = socket(addr->sa_family, SOCK_STREAM, 0);
	if (connect(filler, addr, len) != 0)
		return -1;
	struct sigaction on = {.sa_handler = on_alarm}; /* no SA_RESTART: connect() returns EINTR */
	sigaction(SIGALRM, &on, NULL);
	struct itimerval after = {.it_value = {0, 100000}};
	setitimer(ITIMER_REAL, &after, NULL);
	if (connect(client, addr, len) == 0 || errno != EINTR) {
		fprintf(stderr, "closewait_probe: connect was not interrupted (is the backlog raised?)\n");
		return -1;
	}
	close(accept(listener, NULL, NULL));
	close(filler);
	struct pollfd done = {.fd = client, .events = POLLOUT};
	int err = -1;
	socklen_t err_len = sizeof(err);
	if (poll(&done, 1, 5000) != 1 || getsockopt(client, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0 || err) {
		fprintf(stderr, "closewait_probe: the interrupted connect did not complete\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int ipv6 = 0, buffering = 0, nonblock = 0, queue = 0, farewell = 0, read_eof = 0, first = 0, half = 0, own_shut_rd = 0, opt;
	long pause_ms = 100, idle_ms = 300, gap_ms = 50;
	const char *connect_how = "connect";
	signal(SIGPIPE, on_sigpipe);
	reports = fdopen(dup(1), "w");
	while ((opt = getopt(argc, argv, "6m:c:nikbqFefHRBw:p:g:")) != -1) {
		switch (opt) {
		case '6': ipv6 = 1; break;
		case 'm': method = optarg; break;
		case 'c': connect_how = optarg; break;
		case 'n': nosignal = 1; break;
		case 'i': signal(SIGPIPE, SIG_IGN); break;
		case 'k': signal(SIGPIPE, SIG_DFL); break;
		case 'b': nonblock = 1; break;
		case 'q': queue = 1; break;
		case 'F': farewell = 1; break;
		case 'e': read_eof = 1; break;
		case 'f': first = 1; break;
		case 'H': half = 1; break;
		case 'R': own_shut_rd = 1; break;
		case 'B': buffering = 1; break;
		case 'w': idle_ms = atol(optarg); break;
		case 'p': pause_ms = atol(optarg); break;
		case 'g': gap_ms = atol(optarg); break;
		default: return 2;
		}
	}

	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
	struct sockaddr *addr = ipv6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4;
	socklen_t len = ipv6 ? sizeof(a6) : sizeof(a4);
	int listener = socket(addr->sa_family, SOCK_STREAM, 0);
	int interrupted = !strcmp(connect_how, "eintr"), greeted = !strcmp(connect_how, "fastopen");
	if (listener < 0 || bind(listener, addr, len) != 0 || listen(listener, interrupted ? 0 : 1) != 0 ||
	    getsockname(listener, addr, &len) != 0) {
		perror("closewait_probe: listen");
		return 1;
	}
	int client = socket(addr->sa_family, SOCK_STREAM, 0);
	if (connect_client(connect_how, client, listener, addr, len) != 0) {
		perror("closewait_probe: connect");
		return 1;
	}
	int server = accept(listener, NULL, NULL);
	char buf[256];
	if (!first) { /* the greeting, read whole by the server so that its close sends FIN, not RST */
		if (!greeted)
			setup_io(write(client, "hello", 5), 5, "closewait_probe: greet");
		setup_io(read(server, buf, 5), 5, "closewait_probe: read the greeting");
	}
	if (queue)
		setup_io(write(server, "unread", 6), 6, "closewait_probe: queue");
	for (long waited = 0; buffering && waited < idle_ms; waited += 50) {
		sleep_ms(50);
		fputc('.', socket_stream(client));
	}
	if (!buffering)
		sleep_ms(idle_ms);
	if (farewell)
		setup_io(write(server, "421 idle timeout\r\n", 18), 18, "closewait_probe: farewell");
	if (half)
		shutdown(server, SHUT_WR);
	else if (own_shut_rd) {
		int copy = dup(client);
		shutdown(copy, SHUT_RD);
		close(copy);
	} else
		close(server);
	sleep_ms(pause_ms);

	if (read_eof)
		while (read(client, buf, sizeof(buf)) > 0)
			;
	if (nonblock)
		fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK);
	ssize_t rc = write_with(client, "data1", 5);
	report(1, rc, errno);
	sleep_ms(gap_ms); /* the peer's RST, if any, arrives */
	rc = write_with(client, "data2", 5);
	report(2, rc, errno);
	if (half || own_shut_rd) {
		ssize_t got, total = 0;
		fcntl(server, F_SETFL, O_NONBLOCK);
		while ((got = read(server, buf, sizeof(buf))) > 0)
			total += got;
		fprintf(reports, "server got %zd\n", total);
	}
	return 0;
}
