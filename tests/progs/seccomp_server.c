/* seccomp_server: a server that confines itself, as sandboxed daemons do, then answers early and
 * closes with its client's request unread: the close that lingers.
 *
 *   seccomp_server prctl|syscall|tsync|probe
 * Makes a loopback listener and a client connection to it (in this process), accepts it, and the
 * client sends 5000 bytes. Then it installs a seccomp filter that allows only the system calls the
 * rest of the program makes (read, write, close, exit_group) and kills the process at any other,
 * with prctl(PR_SET_SECCOMP) or with syscall(SYS_seccomp) as libseccomp's seccomp_load() does. Then
 * the server writes its answer, reads 1 byte of the request and closes, and the program prints
 * "served" and exits 0. A system call of the library's after the filter kills it (SIGSYS).
 * tsync: first one such connection closed before the filter, whose answer the client then reads
 * (a socket read: the drain thread runs from there on), and the filter, through syscall(), covers
 * every thread of the process (SECCOMP_FILTER_FLAG_TSYNC).
 * probe: no filter, only the probes that ask whether the kernel has seccomp (libseccomp's
 * SET_MODE_STRICT with a flag, a NULL filter through prctl), which fail and install nothing; then
 * the same answer and close, and "probed". */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#endif

static void die(const char *what)
{
	fprintf(stderr, "seccomp_server: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* A connection to the listener: the client's end and the accepted one; the client sends a request
 * of 5000 bytes, which the server never reads but for one. */
static void connect_pair(int listener, const struct sockaddr_in *addr, int *client, int *server)
{
	static char request[5000];
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (const struct sockaddr *)addr, sizeof(*addr)) < 0)
		die("connect");
	*server = accept(listener, NULL, NULL);
	if (*server < 0 || write(*client, request, sizeof(request)) != (ssize_t)sizeof(request))
		die("request");
}

#define ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

int main(int argc, char **argv)
{
#ifndef ARCH
	(void)argc, (void)argv;
	puts("served"); /* no filter for this architecture: nothing to show */
	return 0;
#else
	const char *mode = argc == 2 ? argv[1] : "";
	bool tsync = strcmp(mode, "tsync") == 0, probe = strcmp(mode, "probe") == 0;
	if (strcmp(mode, "prctl") != 0 && strcmp(mode, "syscall") != 0 && !tsync && !probe) {
		fprintf(stderr, "usage: seccomp_server prctl|syscall|tsync|probe\n");
		return 2;
	}
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, len) < 0 || listen(listener, 16) < 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &len) < 0)
		die("listen");
	static const char answer[] = "answer\n";
	char buf[sizeof(answer)];
	int client, server;
	if (tsync) {
		connect_pair(listener, &addr, &client, &server);
		if (write(server, answer, sizeof(answer) - 1) != (ssize_t)sizeof(answer) - 1)
			die("answer");
		close(server);
		if (read(client, buf, sizeof(answer) - 1) != (ssize_t)sizeof(answer) - 1)
			die("read the answer");
	}
	connect_pair(listener, &addr, &client, &server);

	struct sock_filter rules[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		ALLOW(__NR_read),
		ALLOW(__NR_write),
		ALLOW(__NR_close),
		ALLOW(__NR_exit_group),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog filter = {.len = sizeof(rules) / sizeof(rules[0]), .filter = rules};
	if (probe) {
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 1, NULL) == 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL) == 0)
			die("a probe installed something");
		static const char answer[] = "answer\n";
		char byte;
		if (write(server, answer, sizeof(answer) - 1) != (ssize_t)sizeof(answer) - 1 || read(server, &byte, 1) != 1)
			die("answer");
		close(server);
		puts("probed");
		return 0;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		die("PR_SET_NO_NEW_PRIVS");
	int rc = strcmp(mode, "prctl") == 0
			 ? prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter)
			 : (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0, &filter);
	if (rc != 0)
		die("seccomp");

	char byte;
	if (write(server, answer, sizeof(answer) - 1) != (ssize_t)sizeof(answer) - 1 || read(server, &byte, 1) != 1)
		_exit(3);
	close(server);
	static const char served[] = "served\n";
	if (write(STDOUT_FILENO, served, sizeof(served) - 1) < 0)
		_exit(4);
	exit(0); /* the library's destructor runs too, under the filter */
#endif
}
