/* harden_enomem: the program's address space is full (RLIMIT_AS at its current size), so every new
 * mapping fails with ENOMEM: the library's descriptor table cannot map the page for a new range of
 * numbers, nor its drain thread a stack. The program's calls must still work, with their
 * errno untouched; the library just does less.
 *
 *   harden_enomem [-n]
 * -n: no limit (the control run). A connection in this process whose server side has closed, so the
 * client is in CLOSE_WAIT; and a second one whose server side has 1000 unread bytes. Then, with the
 * limit set:
 *   - dup2(client, 300): descriptor 300 is in a range of numbers the table has no page for;
 *   - one byte written through 300: the guard refuses it (EPIPE) if it knows 300 is a copy of the
 *     client; under the limit it cannot know, and the write passes through as without the library;
 *   - close(300);
 *   - close() of the second server side: with TCPRARE_LINGER=on it lingers: the close sends the FIN
 *     itself, and the drain thread, which the client's read then cannot start, ends the linger.
 * Prints
 *   dup2=R errno_kept=K write=W close=C linger_close=L errno_kept=K2 client=eof|reset
 * R: dup2's result; K: errno as it was before dup2 (it succeeded); W: the write's result, or EPIPE;
 * C, L: the closes' results; K2: errno untouched by the lingering close; client: how the second
 * client's read ended. Exits 77 if the limit cannot be set. alarm(10) bounds it. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define HIGH 300
#define SENTINEL 4242

static struct sockaddr_in addr = {.sin_family = AF_INET};
static socklen_t addr_len = sizeof(addr);
static int listener;

static void die(const char *what)
{
	fprintf(stderr, "harden_enomem: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void connect_pair(int *client, int *server, int request)
{
	char buf[1000];
	int queued = 0;
	memset(buf, 'q', sizeof(buf));
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&addr, addr_len) != 0 ||
	    (*server = accept(listener, NULL, NULL)) < 0 || (request && send(*client, buf, (size_t)request, 0) != request) ||
	    (request && send(*server, "a", 1, 0) != 1)) /* an answer, which a reset would throw away */
		die("connection");
	for (int i = 0; i < 100 && ioctl(*server, FIONREAD, &queued) == 0 && queued < request; i++)
		usleep(10000);
}

/* The process's size now, from /proc/self/status (read before the limit: stdio allocates). */
static rlim_t vm_size(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long kb = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmSize: %lu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (rlim_t)kb * 1024;
}

/* Grows the main thread's stack now: under the limit it could not grow. */
static __attribute__((noinline)) void grow_stack(void)
{
	volatile char big[256 * 1024];
	memset((char *)big, 0, sizeof(big));
}

int main(int argc, char **argv)
{
	bool limit = !(argc > 1 && !strcmp(argv[1], "-n"));
	alarm(10);
	signal(SIGPIPE, SIG_IGN);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, addr_len) != 0 || listen(listener, 8) != 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0)
		die("listener");
	int client, server, client2, server2;
	connect_pair(&client, &server, 0);
	connect_pair(&client2, &server2, 1000);
	/* The client is in CLOSE_WAIT once the FIN is in. Closed through a copy too, so that this close
	 * is a plain one (a shared socket never lingers) and the drain thread is not started yet. */
	close(dup(server));
	close(server);
	struct pollfd p = {.fd = client, .events = POLLRDHUP};
	if (poll(&p, 1, 2000) != 1)
		die("no FIN");
	if (write(client, "", 0) != 0) /* a first write of nothing: now the next one is checked */
		die("write");

	struct rlimit old, rl;
	if (getrlimit(RLIMIT_AS, &old) != 0)
		die("getrlimit");
	rl = old;
	grow_stack();
	if (limit) {
		rl.rlim_cur = vm_size();
		if (rl.rlim_cur == 0 || (old.rlim_max != RLIM_INFINITY && rl.rlim_cur > old.rlim_max) ||
		    setrlimit(RLIMIT_AS, &rl) != 0) {
			printf("cannot set RLIMIT_AS\n");
			return 77;
		}
	}

	errno = SENTINEL;
	int dup_rc = dup2(client, HIGH);
	bool kept = errno == SENTINEL;
	ssize_t w = write(HIGH, "x", 1);
	int write_errno = w < 0 ? errno : 0;
	int close_rc = close(HIGH);
	errno = SENTINEL;
	int linger_rc = close(server2);
	bool kept2 = errno == SENTINEL;

	if (limit && setrlimit(RLIMIT_AS, &old) != 0)
		die("setrlimit back");
	char buf[4096];
	ssize_t n = -1;
	p = (struct pollfd){.fd = client2, .events = POLLIN};
	while (poll(&p, 1, 3000) == 1 && (n = read(client2, buf, sizeof(buf))) > 0)
		;
	const char *end = n == 0 ? "eof" : n < 0 && errno == ECONNRESET ? "reset" : "other";
	char written[16];
	snprintf(written, sizeof(written), "%zd", w);
	printf("dup2=%d errno_kept=%d write=%s close=%d linger_close=%d errno_kept=%d client=%s\n", dup_rc, kept,
	       w < 0 ? (write_errno == EPIPE ? "EPIPE" : strerror(write_errno)) : written, close_rc, linger_rc, kept2, end);
	close(client);
	close(client2);
	close(listener);
	return 0;
}
