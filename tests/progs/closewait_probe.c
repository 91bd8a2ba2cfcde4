/* closewait_probe: a client and the server it talks to, in one process, for the CLOSE_WAIT tests.
 * The server reads the client's greeting, waits for its idle timeout and closes (or only shuts down
 * its sending side with -H); after a pause the client writes twice through one entry point and
 * reports each result:
 *   write1 rc=N errno=NAME sigpipe=K
 *   write2 rc=N errno=NAME sigpipe=K
 * Without tcprare write1 "succeeds" into the closed connection (the bytes are lost) and only write2
 * fails; with it write1 fails. With -H the server then reports what reached it: "server got N".
 *
 *   closewait_probe [-6] [-m METHOD] [-n] [-i] [-k] [-b] [-q] [-e] [-f] [-H] [-w IDLE_MS] [-p PAUSE_MS]
 *                   [-g GAP_MS]
 * METHOD: write writev send sendto sendmsg sendmmsg sendfile (default write)
 * -n MSG_NOSIGNAL   -i SIGPIPE ignored   -k SIGPIPE left at its default (kills)   -b non-blocking
 * -q the server sends data the client never reads, right after the greeting (the client ignores it)
 * -F the server says goodbye as it closes, after its idle timeout (SMTP's "421"); the client never reads it
 * -e the client reads to EOF first   -f no greeting: the write after the pause is the socket's first
 * -H server half-closes and reads   -w the server's idle timeout (default 300 ms; 0: it closes at once)
 * -p the client's pause after the close (default 100 ms)   -g between its two writes (default 50 ms)
 * -R the server stays open; the client shuts down its reading side through a dup of its socket
 *    (POLLRDHUP without any FIN: the writes must go through) */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int sig) { (void)sig, sigpipes++; }

static const char *method = "write";
static int nosignal;

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
	nanosleep(&ts, NULL);
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
	printf("write%d rc=%zd errno=%s sigpipe=%d\n", n, rc,
	       rc >= 0 ? "0" : err == EPIPE ? "EPIPE" : err == ECONNRESET ? "ECONNRESET" : err == EAGAIN ? "EAGAIN" : strerror(err),
	       (int)sigpipes);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int ipv6 = 0, nonblock = 0, queue = 0, farewell = 0, read_eof = 0, first = 0, half = 0, own_shut_rd = 0, opt;
	long pause_ms = 100, idle_ms = 300, gap_ms = 50;
	signal(SIGPIPE, on_sigpipe);
	while ((opt = getopt(argc, argv, "6m:nikbqFefHRw:p:g:")) != -1) {
		switch (opt) {
		case '6': ipv6 = 1; break;
		case 'm': method = optarg; break;
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
	if (listener < 0 || bind(listener, addr, len) != 0 || listen(listener, 1) != 0 ||
	    getsockname(listener, addr, &len) != 0) {
		perror("closewait_probe: listen");
		return 1;
	}
	int client = socket(addr->sa_family, SOCK_STREAM, 0);
	if (connect(client, addr, len) != 0) {
		perror("closewait_probe: connect");
		return 1;
	}
	int server = accept(listener, NULL, NULL);
	char buf[256];
	if (!first) { /* the greeting, read whole by the server so that its close sends FIN, not RST */
		write(client, "hello", 5);
		read(server, buf, 5);
	}
	if (queue)
		write(server, "unread", 6);
	sleep_ms(idle_ms);
	if (farewell)
		write(server, "421 idle timeout\r\n", 18);
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
		printf("server got %zd\n", total);
	}
	return 0;
}
