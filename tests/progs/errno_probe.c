/* errno_probe: what the program sees from every hooked call, in success and in failure. errno is set
 * to a sentinel before each call, so a hook that touches errno on success shows up as well as one
 * that changes a failure's errno or return value. One line per call:
 *   NAME rc=R errno=E
 * R is the return value, or "ok" where it is a descriptor number (which may differ by run); E is the
 * errno's name, or the sentinel 4242 where the call left errno alone. The output must be the same
 * byte for byte with and without tcprare.
 *
 *   errno_probe                 the calls below
 *   errno_probe bad-arguments   also the write/read entry points given bad pointers (EFAULT) or
 *                               too many buffers (EINVAL), which the kernel refuses unread
 *   errno_probe reversed-range  only close_range() with first > last (EINVAL) */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define SENTINEL 4242
#define UNUSED_FD 700 /* checked to be closed at start: the EBADF cases use it */

static const char *errno_name(int err)
{
	static char number[16];
	switch (err) {
	case EAGAIN: return "EAGAIN";
	case EBADF: return "EBADF";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case EISCONN: return "EISCONN";
	case ENOTCONN: return "ENOTCONN";
	case EPIPE: return "EPIPE";
	case ENOTSOCK: return "ENOTSOCK";
	default:
		snprintf(number, sizeof(number), "%d", err);
		return number;
	}
}

/* CALL(name, expr): a call whose result is a count or a status. */
#define CALL(name, expr)                                                                             \
	do {                                                                                         \
		errno = SENTINEL;                                                                    \
		long rc_ = (long)(expr);                                                             \
		int err_ = errno;                                                                    \
		printf("%s rc=%ld errno=%s\n", (name), rc_, errno_name(err_));                       \
	} while (0)

/* FD_CALL(name, var, expr): a call that returns a descriptor, kept in var. */
#define FD_CALL(name, var, expr)                                                                     \
	do {                                                                                         \
		errno = SENTINEL;                                                                    \
		(var) = (expr);                                                                      \
		int err_ = errno;                                                                    \
		printf("%s rc=%s errno=%s\n", (name), (var) >= 0 ? "ok" : (var) == -1 ? "-1" : "?", \
		       errno_name(err_));                                                            \
	} while (0)

static void die(const char *what)
{
	fprintf(stderr, "errno_probe: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Waits until fd has exactly bytes queued to read, so that each read below gets a known count. */
static void wait_queued(int fd, int bytes)
{
	for (int i = 0; i < 1000; i++) {
		int queued = 0;
		if (ioctl(fd, FIONREAD, &queued) == 0 && queued >= bytes)
			return;
		poll(NULL, 0, 1);
	}
	die("wait_queued");
}

/* ISOLATED(name, expr): CALL in a child, so that a crash is reported and the next case still runs. */
#define ISOLATED(name, expr)                                                                         \
	do {                                                                                         \
		pid_t pid_ = fork();                                                                 \
		if (pid_ == 0) {                                                                     \
			CALL(name, expr);                                                            \
			_exit(0);                                                                    \
		}                                                                                    \
		int status_ = 0;                                                                     \
		if (pid_ < 0 || waitpid(pid_, &status_, 0) != pid_)                                  \
			die("fork");                                                                 \
		if (WIFSIGNALED(status_))                                                            \
			printf("%s killed by signal %d\n", (name), WTERMSIG(status_));               \
		else if (WEXITSTATUS(status_) != 0) /* a sanitizer caught the crash */               \
			printf("%s exited with status %d\n", (name), WEXITSTATUS(status_));          \
	} while (0)

static void bad_argument_cases(int fd)
{
	/* volatile: the compiler must not see the bad arguments coming */
	struct iovec *volatile no_iov = NULL;
	struct msghdr *volatile no_msg = NULL;
	struct mmsghdr *volatile no_mmsg = NULL;
	struct msghdr iov_missing = {.msg_iov = no_iov, .msg_iovlen = 1};
	struct iovec one = {(void *)"x", 1};
	volatile int too_many = INT_MAX; /* more than IOV_MAX */
	ISOLATED("writev_efault", writev(fd, no_iov, 1));
	ISOLATED("writev_too_many_einval", writev(fd, &one, too_many));
	ISOLATED("sendmsg_null_efault", sendmsg(fd, no_msg, 0));
	ISOLATED("sendmsg_iov_efault", sendmsg(fd, &iov_missing, 0));
	ISOLATED("sendmmsg_efault", sendmmsg(fd, no_mmsg, 1, 0));
	ISOLATED("recvmsg_null_efault", recvmsg(fd, no_msg, MSG_DONTWAIT));
	ISOLATED("readv_efault", readv(fd, no_iov, 1));
}

int main(int argc, char **argv)
{
	bool bad_arguments = argc > 1 && !strcmp(argv[1], "bad-arguments");
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "reversed-range")) {
		CALL("close_range_reversed_einval", close_range(61, 60, 0));
		CALL("close_range_reversed_cloexec_einval", close_range(61, 60, CLOSE_RANGE_CLOEXEC));
		return 0;
	}
	if (fcntl(UNUSED_FD, F_GETFD) != -1)
		die("the unused descriptor is open");

	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	char buf[64];
	struct iovec iov = {buf, 5};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	int listener, closed_port, client, server, unconnected, copy;

	/* A port bound but not listening answers a connect with RST. */
	FD_CALL("socket", closed_port, socket(AF_INET, SOCK_STREAM, 0));
	if (bind(closed_port, (struct sockaddr *)&addr, len) != 0 ||
	    getsockname(closed_port, (struct sockaddr *)&addr, &len) != 0)
		die("bind");
	FD_CALL("socket_client", client, socket(AF_INET, SOCK_STREAM, 0));
	CALL("connect_refused", connect(client, (struct sockaddr *)&addr, len));
	CALL("close", close(client));
	CALL("close_ebadf", close(UNUSED_FD));
	CALL("close_again_ebadf", close(client));
	CALL("socket_einval", socket(AF_INET, 12345, 0));

	addr.sin_port = 0;
	FD_CALL("socket_listener", listener, socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
	if (bind(listener, (struct sockaddr *)&addr, len) != 0)
		die("bind");
	CALL("listen", listen(listener, 8));
	CALL("listen_ebadf", listen(UNUSED_FD, 8));
	if (getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
		die("getsockname");
	FD_CALL("accept4_eagain", server, accept4(listener, NULL, NULL, SOCK_CLOEXEC));
	FD_CALL("accept_eagain", server, accept(listener, NULL, NULL));
	FD_CALL("socket_client", client, socket(AF_INET, SOCK_STREAM, 0));
	CALL("connect", connect(client, (struct sockaddr *)&addr, len));
	CALL("connect_again", connect(client, (struct sockaddr *)&addr, len)); /* EISCONN */
	FD_CALL("accept4", server, accept4(listener, NULL, NULL, SOCK_NONBLOCK));
	if (server < 0)
		die("accept4");

	/* writes: six of five bytes */
	char file_path[] = "/tmp/errno_probe.XXXXXX";
	int file = mkstemp(file_path);
	if (file < 0 || write(file, "fffff", 5) != 5)
		die("file");
	unlink(file_path);
	off_t offset = 0;
	memcpy(buf, "mmmmm", 5);
	CALL("write", write(client, "wwwww", 5));
	CALL("send", send(client, "sssss", 5, 0));
	CALL("sendto", sendto(client, "ttttt", 5, 0, NULL, 0));
	CALL("sendmsg", sendmsg(client, &msg, 0));
	CALL("writev", writev(client, &iov, 1));
	CALL("sendfile", sendfile(client, file, &offset, 5));
	CALL("write_zero", write(client, "", 0));
	CALL("write_ebadf", write(UNUSED_FD, "w", 1));
	CALL("send_ebadf", send(UNUSED_FD, "s", 1, 0));
	CALL("sendto_ebadf", sendto(UNUSED_FD, "t", 1, 0, NULL, 0));
	CALL("sendmsg_ebadf", sendmsg(UNUSED_FD, &msg, 0));
	CALL("writev_ebadf", writev(UNUSED_FD, &iov, 1));
	CALL("sendfile_ebadf", sendfile(UNUSED_FD, file, &offset, 5));
	CALL("send_enotsock", send(file, "s", 1, 0));
	CALL("send_listener_epipe", send(listener, "s", 1, 0));

	/* reads: the thirty bytes, five at a time, then nothing (non-blocking) */
	wait_queued(server, 30);
	CALL("read", read(server, buf, 5));
	CALL("recv", recv(server, buf, 5, 0));
	CALL("recvfrom", recvfrom(server, buf, 5, 0, NULL, NULL));
	CALL("recvmsg", recvmsg(server, &msg, 0));
	CALL("readv", readv(server, &iov, 1));
	CALL("read_zero", read(server, buf, 0));
	CALL("read", read(server, buf, 5));
	CALL("read_eagain", read(server, buf, 5));
	CALL("recv_eagain", recv(server, buf, 5, 0));
	CALL("recvfrom_eagain", recvfrom(server, buf, 5, 0, NULL, NULL));
	CALL("recvmsg_eagain", recvmsg(server, &msg, 0));
	CALL("readv_eagain", readv(server, &iov, 1));
	CALL("read_ebadf", read(UNUSED_FD, buf, 5));
	CALL("recv_ebadf", recv(UNUSED_FD, buf, 5, 0));

	/* copies */
	FD_CALL("dup", copy, dup(client));
	CALL("close_copy", close(copy));
	FD_CALL("dup_ebadf", copy, dup(UNUSED_FD));
	FD_CALL("dup2", copy, dup2(client, 50));
	FD_CALL("dup2_same", copy, dup2(client, client));
	FD_CALL("dup2_same_ebadf", copy, dup2(UNUSED_FD, UNUSED_FD));
	FD_CALL("dup2_ebadf", copy, dup2(UNUSED_FD, 51));
	FD_CALL("dup3", copy, dup3(client, 52, O_CLOEXEC));
	FD_CALL("dup3_same_einval", copy, dup3(client, client, 0));
	FD_CALL("dup3_ebadf", copy, dup3(UNUSED_FD, 53, 0));
	FD_CALL("dup3_flags_einval", copy, dup3(client, 54, 0x7fff0000));
	FD_CALL("fcntl_dupfd", copy, fcntl(client, F_DUPFD, 60));
	FD_CALL("fcntl_dupfd_cloexec", copy, fcntl(client, F_DUPFD_CLOEXEC, 61));
	FD_CALL("fcntl_dupfd_ebadf", copy, fcntl(UNUSED_FD, F_DUPFD, 62));
	CALL("fcntl_getfd", fcntl(61, F_GETFD));
	CALL("fcntl_getfd_ebadf", fcntl(UNUSED_FD, F_GETFD));

	/* shutdown and closing */
	FD_CALL("socket_unconnected", unconnected, socket(AF_INET6, SOCK_STREAM, 0));
	CALL("shutdown_enotconn", shutdown(unconnected, SHUT_WR));
	CALL("shutdown_einval", shutdown(client, 99));
	CALL("shutdown_ebadf", shutdown(UNUSED_FD, SHUT_RDWR));
	CALL("shutdown", shutdown(client, SHUT_WR));
	CALL("close_range", close_range(50, 52, 0));
	CALL("close_range_cloexec", close_range(60, 61, CLOSE_RANGE_CLOEXEC));
	CALL("close_range_unused", close_range(UNUSED_FD, UNUSED_FD + 10, 0));
	CALL("close_range_flags_einval", close_range(60, 61, 0x40000000));
	CALL("close", close(60));
	CALL("close", close(61));
	CALL("close", close(unconnected));
	if (bad_arguments)
		bad_argument_cases(client);
	CALL("close", close(server));
	CALL("close", close(client));
	CALL("close", close(listener));
	CALL("close", close(closed_port));
	CALL("close", close(file));
	return 0;
}
