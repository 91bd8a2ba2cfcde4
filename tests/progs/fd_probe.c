/* fd_probe: does the descriptor table stay true when descriptors are copied, handed to a child, or
 * closed by routes other than close()? The CLOSE_WAIT guard is the witness: a write on a descriptor
 * the library (rightly) takes for the connected socket is refused with EPIPE, a write on one it
 * (rightly) takes for something else goes through.
 *
 * Every scenario starts from the same connection: a client socket c whose server side read the
 * greeting and closed (FIN), then a 100 ms pause. Each result is one line:
 *   NAME rc=N errno=NAME
 *
 *   fd_probe SCENARIO
 * dup dup2 dup3 fdupfd  write on a copy of c (dup, dup2 to 50, dup3 to 51 with O_CLOEXEC,
 *                       F_DUPFD_CLOEXEC from 60): refused with tcprare, rc=5 without
 * fork                  a child writes on c: refused with tcprare, rc=5 without
 * rawclose closerange fclose dup2over
 *                       one write on c ("first", refused with tcprare: the FIN is now cached), then c
 *                       goes away (raw close syscall, close_range, fdopen+fclose, dup2 of a file over
 *                       it) and a regular file takes its number: writing to the file always succeeds
 * dup2bad dup3bad       a dup2/dup3 onto c that fails (EBADF, EINVAL) leaves c as it was: a write on
 *                       it is still refused with tcprare
 * SIGPIPE is ignored, so a refused write just returns EPIPE. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *errno_name(int err)
{
	switch (err) {
	case 0: return "0";
	case EPIPE: return "EPIPE";
	case ECONNRESET: return "ECONNRESET";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case EAGAIN: return "EAGAIN";
	default: return strerror(err);
	}
}

static void report(const char *name, long rc, int err)
{
	printf("%s rc=%ld errno=%s\n", name, rc, rc >= 0 ? "0" : errno_name(err));
	fflush(stdout);
}

static void die(const char *what)
{
	fprintf(stderr, "fd_probe: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Writes "data1" on fd and reports it under name. */
static ssize_t write_and_report(const char *name, int fd)
{
	errno = 0;
	ssize_t rc = write(fd, "data1", 5);
	report(name, rc, errno);
	return rc;
}

static int listener = -1;

/* The connected client socket; its peer has read the greeting and closed. */
static int closed_connection(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, len) != 0 || listen(listener, 1) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
		die("listen");
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&addr, len) != 0)
		die("connect");
	int server = accept(listener, NULL, NULL);
	if (server < 0)
		die("accept");
	char buf[5];
	/* read whole by the server, so that its close sends FIN, not RST */
	if (write(c, "hello", 5) != 5 || read(server, buf, 5) != 5)
		die("greeting");
	close(server);
	nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
	return c;
}

/* A fresh regular file, open for writing: takes the lowest free number. */
static int open_file(void)
{
	char path[] = "/tmp/fd_probe.XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		die("mkstemp");
	unlink(path);
	return fd;
}

/* c has gone away by some route: a file opened now gets its number, and writing to it succeeds. */
static void file_on_same_number(int c)
{
	int file = open_file();
	printf("same_number=%d\n", file == c);
	write_and_report("target", file);
}

static int copy_of(const char *scenario, int c)
{
	if (!strcmp(scenario, "dup"))
		return dup(c);
	if (!strcmp(scenario, "dup2"))
		return dup2(c, 50);
	if (!strcmp(scenario, "dup3"))
		return dup3(c, 51, O_CLOEXEC);
	if (!strcmp(scenario, "fdupfd"))
		return fcntl(c, F_DUPFD_CLOEXEC, 60);
	return -2;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fd_probe SCENARIO\n");
		return 2;
	}
	const char *scenario = argv[1];
	signal(SIGPIPE, SIG_IGN);
	int c = closed_connection();

	int copy = copy_of(scenario, c);
	if (copy != -2) {
		if (copy < 0)
			die(scenario);
		printf("copy=%d\n", copy);
		write_and_report("target", copy);
	} else if (!strcmp(scenario, "fork")) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			write_and_report("target", c);
			_exit(0);
		}
		int status;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			die("child");
	} else if (!strcmp(scenario, "rawclose")) {
		write_and_report("first", c);
		syscall(SYS_close, c); /* behind the library's back */
		file_on_same_number(c);
	} else if (!strcmp(scenario, "closerange")) {
		write_and_report("first", c);
		if (close_range((unsigned int)c, (unsigned int)c, 0) != 0)
			die("close_range");
		file_on_same_number(c);
	} else if (!strcmp(scenario, "fclose")) {
		write_and_report("first", c);
		FILE *stream = fdopen(c, "w");
		if (!stream)
			die("fdopen");
		fclose(stream); /* glibc closes the descriptor itself, not through close() */
		file_on_same_number(c);
	} else if (!strcmp(scenario, "dup2over")) {
		write_and_report("first", c);
		int file = open_file();
		if (dup2(file, c) != c)
			die("dup2");
		close(file);
		write_and_report("target", c);
	} else if (!strcmp(scenario, "dup2bad")) {
		int unused = open_file();
		close(unused);
		errno = 0;
		int rc = dup2(unused, c); /* fails: c stays the connected socket */
		report("dup2", rc, errno);
		write_and_report("target", c);
	} else if (!strcmp(scenario, "dup3bad")) {
		int file = open_file();
		errno = 0;
		int rc = dup3(file, c, 0x7fff0000); /* no such flag: fails, c stays the connected socket */
		report("dup3", rc, errno);
		write_and_report("target", c);
	} else {
		fprintf(stderr, "fd_probe: unknown scenario %s\n", scenario);
		return 2;
	}
	return 0;
}
