/* stress: every intervention at once under threads and fork. Meant to run with TCPRARE_LINGER=on,
 * TCPRARE_CLOSEWAIT=on, TCPRARE_CLOSEWAIT_SCOPE=all, TCPRARE_CLOSEWAIT_IDLE_MS=0 (every write checked)
 * and TCPRARE_BACKLOG=max; it also runs, and passes, without the library.
 *
 *   stress [-t] [-x] [-d SECONDS] [-r ROUNDS] [-c CHILDREN]
 *
 * WORKERS (6) threads, each with an epoll instance and a listener of its own, run ROUNDS rounds
 * (default 400). A round is one connection, to the shared IPv4 or IPv6 listener (accepted by whichever
 * worker gets there) or to the worker's own: the client connects and sends a header (id, kind, flags,
 * sizes) and its request, then accepts one connection from the same listener, plays its server, and
 * finally plays its own client to the end. Everything a server waits for was sent before the accept,
 * and nothing written before its peer reads exceeds what loopback buffers hold, so no wait is circular.
 * Kinds of connection:
 *   normal     the server reads the whole request, answers, closes (the peer may still send: that
 *              close lingers with TCPRARE_LINGER=on); the client reads to EOF
 *   halfclose  the client shuts down writing after its request; the server reads to EOF, answers
 *   early      as halfclose, but the server answers before reading to EOF: with the guard on
 *              accepted sockets (scope=all), its writes into CLOSE_WAIT may be refused with EPIPE
 *   unread     the server reads a few bytes of the request, answers and closes with the rest unread:
 *              without a lingering close the kernel resets the connection
 *   closewait  the server answers and closes; the client reads exactly the answer (not EOF), waits
 *              for the FIN and writes again: the seed's lost write, which the guard refuses
 * and flags: the client's or the server's socket copied (dup, dup2 over a UDP socket, F_DUPFD) and the
 * original handed to another thread, which closes it a moment later while the owner still uses the
 * copy; sockets registered in the thread's epoll instance and closed while registered. Writes go
 * through write, send, writev and sendmsg, reads through read, recv, readv and recvmsg; accepts through
 * accept and accept4. Workers close their epoll instances when they finish, while others still work.
 * Meanwhile a forking thread starts CHILDREN children (default 6), 10 ms apart, to run side by side:
 * each closes what it inherited (close_range) and runs 2 workers of the same kind on listeners of its
 * own, ROUNDS / 4 rounds each. With -x a child runs the program anew (exec, then "-C": be a child) for
 * that, for the sanitizers: a forked copy of a threaded process cannot start threads reliably under
 * ThreadSanitizer ("dup thread with used id": it still counts the parent's threads as running), and
 * deadlocks in AddressSanitizer's malloc if another thread held the allocator's lock at the fork
 * (gcc 12's libasan). Each process makes one lingering close before its threads start (see warm_up).
 *
 * Checks (each failure is named on stderr; the program then exits 1):
 *   - every byte of the header, request and answer carries a pattern of its connection and offset,
 *     and is checked where it is read;
 *   - on every connection, the bytes that the writer's calls reported written are the bytes the
 *     reader received, in each direction the reader reads to its end. A write the guard refused
 *     returned -1, so it counts as not sent. The request of "unread" and the late write of
 *     "closewait" are not read by their peer: they are counted apart;
 *   - no unexpected EPIPE (only "early" server writes, the late write, and "unread" requests after the
 *     server closed may fail) and no ECONNRESET but on "unread" connections;
 *   - epoll never reports an event for a socket this thread closed, unless the socket may still be
 *     held elsewhere (copied, or open at a fork: the kernel keeps those registered);
 *   - at the end, after waiting (at most 10 s) for lingering sockets to finish, as many internet
 *     sockets are open as at the start, and at most 3 other descriptors more (the library's drain
 *     thread keeps an epoll instance and a pipe);
 *   - every child passes the same checks;
 *   - with -t (the library is preloaded with everything on): every late write is refused, and every
 *     "unread" close ends in EOF at the client (the close lingered), except where the server's socket
 *     was copied, which must end in a reset (a shared socket never lingers), or was open at a fork.
 * Prints "ok connections=N bytes=B" and a line of counts:
 *   unread eof=E reset=R copied_reset=C/N forked=F late refused=F lost=L nofin=N early_refused=W
 * unread: how the clients of "unread" connections saw the end (C of the N with a copied server socket
 * reset; F open at a fork, not counted otherwise); late: late writes refused, accepted by the kernel
 * (and lost), or not tried because no FIN came within 3 s; early_refused: "early" answers refused.
 * Over the deadline (default 30 s) it says what each thread was doing and exits 3. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#define WORKERS 6
#define CHILD_WORKERS 2
#define MAX_THREADS (WORKERS + 1)
#define MAX_ROUNDS 1000
#define MAX_CONNS (WORKERS * MAX_ROUNDS)
#define CHILD_ROUNDS_DIVISOR 4 /* a child runs ROUNDS / 4 rounds per worker */
#define MAGIC 0x53545253u
#define UNREAD_PREFIX 64
#define LATE_BYTES 200
#define CHUNK 4096
#define HANDOFF_SLOTS 64

enum kind { K_NORMAL, K_HALFCLOSE, K_EARLY, K_UNREAD, K_CLOSEWAIT, K_COUNT };
static const char *const kind_names[K_COUNT] = {"normal", "halfclose", "early", "unread", "closewait"};
enum {
	F_V6 = 1,
	F_PRIVATE = 2,     /* the worker's own listener */
	F_DUP_CLIENT = 4,  /* the client's original goes to another thread, which closes it */
	F_DUP_SERVER = 8,  /* the same with the server's */
	F_EPOLL_CLIENT = 16,
	F_EPOLL_SERVER = 32,
};
enum end { END_NONE, END_EOF, END_RESET, END_ERROR, END_COUNT_REACHED };
enum { CLIENT, SERVER };
enum { TO_SERVER, TO_CLIENT }; /* pattern directions */

struct header {
	uint32_t magic, id, kind, flags, request, answer;
};

/* One connection. The client's thread writes the c_ fields, the server's the s_ fields (the server
 * learns kind and flags from the header, not from here: a socket carries no happens-before). */
struct conn {
	uint32_t kind, flags;
	long request, answer;
	long c_sent, c_recv, s_sent, s_recv; /* request bytes the client's calls reported written, ... */
	int c_end;                           /* how the client's last read ended */
	int c_write_err;                     /* errno of the client's failed request write, or 0 */
	int late;                            /* closewait: 0 not tried (no FIN seen), 1 refused, 2 written */
	bool c_used;
	bool s_done, s_forked;               /* the server side ran; a fork overlapped its socket */
	long s_refused;                      /* early: writes refused */
};

/* Registration of a side's socket in its thread's epoll instance; only that thread touches it. */
struct reg {
	uint32_t fork_seq; /* the fork sequence before the socket existed */
	bool closed, exempt; /* exempt: the socket was copied, so the kernel may keep it registered */
};

struct listener {
	int fd;
	struct sockaddr_storage addr;
	socklen_t len;
};

static struct conn conns[MAX_CONNS];
static struct reg regs[MAX_CONNS][2];
static uint32_t next_conn;
static struct listener shared_listeners[2]; /* IPv4, IPv6 */
static int rounds = 400, children = 6, deadline_s = 30;
static bool strict;
static long failures;
static bool in_child;

/* Even while no fork is in progress; odd from just before a fork() until its child has closed what
 * it inherited. A socket is held by no child if the sequence was even and unchanged from before it
 * was created until after it was closed. */
static uint32_t fork_seq;

/* What each thread is doing, for the deadline message. */
static const char *volatile doing[MAX_THREADS];
static volatile uint32_t doing_conn[MAX_THREADS];

/* Descriptors handed to other threads to close. */
static pthread_mutex_t handoff_lock = PTHREAD_MUTEX_INITIALIZER;
static int handoff[HANDOFF_SLOTS];
static int handoff_count;

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)

static void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void complain(const char *fmt, ...)
{
	char text[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	fprintf(stderr, "stress[%d]%s: %s\n", (int)getpid(), in_child ? " child" : "", text);
	__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
}

/* --- the deadline --- */

static void say(const char *s)
{
	if (write(2, s, strlen(s)) < 0) {
		/* nothing left to tell */
	}
}

static void say_number(long v)
{
	char digits[24], *p = digits + sizeof(digits);
	*--p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	say(p);
}

static void on_deadline(int sig)
{
	(void)sig;
	say("stress[");
	say_number(getpid());
	say(in_child ? "] child: deadline exceeded\n" : "]: deadline exceeded\n");
	for (int i = 0; i < MAX_THREADS; i++) {
		const char *what = doing[i];
		if (!what)
			continue;
		say("  thread ");
		say_number(i);
		say(": ");
		say(what);
		say(" conn ");
		say_number(doing_conn[i]);
		say("\n");
	}
	_exit(3);
}

static void step(int self, const char *what, uint32_t id)
{
	doing[self] = what;
	doing_conn[self] = id;
}

/* --- descriptors --- */

/* Is inode a UNIX socket's (the library's syslog socket, say)? From /proc/self/net/unix, which
 * lists them all. */
static bool unix_socket(unsigned long inode)
{
	FILE *f = fopen("/proc/self/net/unix", "re");
	char line[512];
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f)) {
		unsigned long ino;
		found = sscanf(line, "%*s %*s %*s %*s %*s %*s %lu", &ino) == 1 && ino == inode;
	}
	if (f)
		fclose(f);
	return found;
}

/* Internet sockets open in this process (the library's lingering ones included), and other
 * descriptors; with list, the others are named in it ("fd=target ..."). Only the names in
 * /proc/self/fd are read: a descriptor the library may be closing meanwhile is not touched. */
static void list_descriptors(int *tcp, int *other, char *list, size_t size)
{
	size_t used = 0;
	if (list)
		list[0] = '\0';
	DIR *dir = opendir("/proc/self/fd");
	*tcp = *other = 0;
	if (!dir) {
		*tcp = *other = -1;
		return;
	}
	for (struct dirent *e; (e = readdir(dir));) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd == dirfd(dir))
			continue;
		char path[64], target[128];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue; /* closed since readdir saw it (the drain thread finishing a lingering socket) */
		target[n] = '\0';
		unsigned long inode;
		if (sscanf(target, "socket:[%lu]", &inode) == 1 && !unix_socket(inode)) {
			++*tcp;
			continue;
		}
		++*other;
		if (list && used < size)
			used += (size_t)snprintf(list + used, size - used, " %d=%s", fd, target);
	}
	closedir(dir);
}

static void count_descriptors(int *tcp, int *other)
{
	list_descriptors(tcp, other, NULL, 0);
}

static void pause_ms(long ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* --- the byte pattern --- */

static inline uint8_t pattern(uint32_t id, int dir, long offset)
{
	return (uint8_t)((uint32_t)offset * 131u + id * 7u + (uint32_t)(offset >> 8) + (dir ? 0x5au : 0xa5u));
}

static void fill(uint8_t *buf, uint32_t id, int dir, long offset, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = pattern(id, dir, offset + (long)i);
}

static bool matches(const uint8_t *buf, uint32_t id, int dir, long offset, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != pattern(id, dir, offset + (long)i))
			return false;
	return true;
}

/* --- writing and reading through every entry point --- */

static ssize_t write_via(int fd, const uint8_t *buf, size_t n, int how)
{
	size_t half = n / 2;
	struct iovec iov[2] = {{(void *)buf, half}, {(void *)(buf + half), n - half}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	switch (how % 4) {
	case 0:
		return write(fd, buf, n);
	case 1:
		return send(fd, buf, n, MSG_NOSIGNAL);
	case 2:
		return writev(fd, iov, 2);
	default:
		return sendmsg(fd, &msg, 0);
	}
}

static ssize_t read_via(int fd, uint8_t *buf, size_t n, int how)
{
	size_t half = n / 2;
	struct iovec iov[2] = {{buf, half}, {buf + half, n - half}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	switch (how % 4) {
	case 0:
		return read(fd, buf, n);
	case 1:
		return recv(fd, buf, n, 0);
	case 2:
		return readv(fd, iov, 2);
	default:
		return recvmsg(fd, &msg, 0);
	}
}

/* Writes len pattern bytes from offset, in chunks, through entry points chosen from how. Returns the
 * bytes the calls reported written; *err is the errno of a failed call (which ends the stream), or 0. */
static long write_stream(int fd, uint32_t id, int dir, long len, int how, int *err)
{
	uint8_t buf[CHUNK];
	long sent = 0;
	*err = 0;
	while (sent < len) {
		size_t n = (size_t)(len - sent) < sizeof(buf) ? (size_t)(len - sent) : sizeof(buf);
		fill(buf, id, dir, sent, n);
		ssize_t rc = write_via(fd, buf, n, how++);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0) {
			*err = rc < 0 ? errno : EIO;
			break;
		}
		sent += rc;
	}
	return sent;
}

/* Reads up to want pattern bytes from offset (want < 0: to EOF), checking each. Returns the bytes
 * read; *end says why it stopped. */
static long read_stream(int fd, uint32_t id, int dir, long offset, long want, int how, int *end)
{
	uint8_t buf[CHUNK];
	long got = 0;
	for (;;) {
		if (want >= 0 && got >= want) {
			*end = END_COUNT_REACHED;
			break;
		}
		size_t n = want < 0 || (size_t)(want - got) > sizeof(buf) ? sizeof(buf) : (size_t)(want - got);
		ssize_t rc = read_via(fd, buf, n, how++);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc == 0) {
			*end = END_EOF;
			break;
		}
		if (rc < 0) {
			*end = errno == ECONNRESET ? END_RESET : END_ERROR;
			if (*end == END_ERROR)
				complain("conn %u: read: %s", id, strerror(errno));
			break;
		}
		if (!matches(buf, id, dir, offset + got, (size_t)rc))
			complain("conn %u: %s bytes at %ld are not what was written", id, dir == TO_SERVER ? "request" : "answer",
				 offset + got);
		got += rc;
	}
	return got;
}

static bool write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t rc = write(fd, p, n);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return false;
		p += rc;
		n -= (size_t)rc;
	}
	return true;
}

static bool read_all(int fd, void *buf, size_t n)
{
	char *p = buf;
	while (n) {
		ssize_t rc = read(fd, p, n);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return false;
		p += rc;
		n -= (size_t)rc;
	}
	return true;
}

/* --- copies handed to other threads --- */

/* The original goes to another thread; the caller goes on with a copy, made in one of three ways. */
static int copy_and_hand_off(int fd, uint32_t id, int how)
{
	int copy = -1;
	switch (how % 3) {
	case 0:
		copy = dup(fd);
		break;
	case 1:
		copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		break;
	default: /* over a UDP socket: the number changes kind */
		copy = socket(AF_INET, SOCK_DGRAM, 0);
		if (copy >= 0 && dup2(fd, copy) != copy) {
			close(copy);
			copy = -1;
		}
		break;
	}
	if (copy < 0) {
		complain("conn %u: copy: %s", id, strerror(errno));
		return fd;
	}
	pthread_mutex_lock(&handoff_lock);
	bool queued = handoff_count < HANDOFF_SLOTS;
	if (queued)
		handoff[handoff_count++] = fd;
	pthread_mutex_unlock(&handoff_lock);
	if (!queued && close(fd) != 0)
		complain("conn %u: close of the original: %s", id, strerror(errno));
	return copy;
}

/* Closes up to max descriptors other threads handed off (max < 0: all). */
static void close_handed_off(int max)
{
	for (int i = 0; max < 0 || i < max; i++) {
		pthread_mutex_lock(&handoff_lock);
		int fd = handoff_count ? handoff[--handoff_count] : -1;
		pthread_mutex_unlock(&handoff_lock);
		if (fd < 0)
			return;
		if (close(fd) != 0)
			complain("close of a handed-off copy: %s", strerror(errno));
	}
}

/* --- epoll --- */

static uint64_t tag(uint32_t id, int side)
{
	return (uint64_t)id << 1 | (uint64_t)side;
}

static void note_created(uint32_t id, int side, uint32_t seq)
{
	regs[id][side] = (struct reg){.fork_seq = seq};
}

static void watch(int ep, int fd, uint32_t id, int side)
{
	struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = tag(id, side)};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) != 0)
		complain("conn %u: epoll_ctl ADD: %s", id, strerror(errno));
}

/* Any event of a socket this thread closed, that nothing else can hold, is one too many. */
static void check_events(const struct epoll_event *events, int n)
{
	for (int i = 0; i < n; i++) {
		uint32_t id = (uint32_t)(events[i].data.u64 >> 1);
		int side = (int)(events[i].data.u64 & 1);
		if (id >= MAX_CONNS) {
			complain("epoll reported an event with data 0x%llx, never registered",
				 (unsigned long long)events[i].data.u64);
			continue;
		}
		struct reg *r = &regs[id][side];
		uint32_t seq = LOAD(fork_seq);
		if (r->closed && !r->exempt && seq == r->fork_seq && seq % 2 == 0)
			complain("conn %u: epoll reported events 0x%x for the %s socket after it was closed", id,
				 events[i].events, side == CLIENT ? "client" : "server");
	}
}

/* Waits (at most 2 s) until epoll reports the socket readable; checks every event on the way. */
static void wait_readable(int ep, uint32_t id, int side)
{
	struct epoll_event events[16];
	for (int tries = 0; tries < 20; tries++) {
		int n = epoll_wait(ep, events, 16, 100);
		if (n < 0 && errno != EINTR) {
			complain("epoll_wait: %s", strerror(errno));
			return;
		}
		check_events(events, n);
		for (int i = 0; i < n; i++)
			if (events[i].data.u64 == tag(id, side))
				return;
	}
}

static void closed(int fd, uint32_t id, int side, bool exempt)
{
	if (close(fd) != 0)
		complain("conn %u: close of the %s socket: %s", id, side == CLIENT ? "client" : "server", strerror(errno));
	regs[id][side].closed = true;
	regs[id][side].exempt = exempt;
}

/* --- one connection --- */

struct worker {
	int self;             /* index into doing[] */
	int index;            /* among the workers of this process */
	int ep;
	struct listener own;
};

static bool listen_on(struct listener *l, bool v6)
{
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
	memset(&l->addr, 0, sizeof(l->addr));
	if (v6)
		memcpy(&l->addr, &a6, sizeof(a6));
	else
		memcpy(&l->addr, &a4, sizeof(a4));
	l->len = v6 ? sizeof(a6) : sizeof(a4);
	l->fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&l->addr, l->len) != 0 || listen(l->fd, 16) != 0 ||
	    getsockname(l->fd, (struct sockaddr *)&l->addr, &l->len) != 0) {
		complain("listen: %s", strerror(errno));
		return false;
	}
	return true;
}

/* What a round does, from its worker and number alone. */
static void plan(const struct worker *w, int round, uint32_t *kind, uint32_t *flags)
{
	uint32_t x = (uint32_t)(w->index * 7919 + round * 104729 + (in_child ? 13 : 0));
	x ^= x >> 7;
	x *= 2654435761u;
	x ^= x >> 13;
	static const uint8_t kinds[10] = {K_NORMAL, K_NORMAL, K_NORMAL, K_HALFCLOSE, K_HALFCLOSE,
					  K_EARLY,  K_UNREAD, K_UNREAD, K_UNREAD,    K_CLOSEWAIT};
	*kind = kinds[x % 10];
	*flags = 0;
	if ((x >> 4) & 1)
		*flags |= F_V6;
	if ((x >> 5) % 3 == 0)
		*flags |= F_PRIVATE;
	if ((x >> 7) % 4 == 0)
		*flags |= F_DUP_CLIENT;
	if ((x >> 9) % 5 == 0)
		*flags |= F_DUP_SERVER;
	if ((x >> 11) % 2 == 0)
		*flags |= F_EPOLL_CLIENT;
	if ((x >> 12) % 2 == 0)
		*flags |= F_EPOLL_SERVER;
}

/* The client's part before the accept: everything the server will wait for. */
static int client_start(struct worker *w, struct conn *c, uint32_t id, const struct listener *l)
{
	uint32_t seq = LOAD(fork_seq);
	int fd = socket(c->flags & F_V6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (fd < 0) {
		complain("conn %u: socket: %s", id, strerror(errno));
		return -1;
	}
	note_created(id, CLIENT, seq);
	step(w->self, "connect", id);
	if (connect(fd, (struct sockaddr *)&l->addr, l->len) != 0) {
		complain("conn %u: connect: %s", id, strerror(errno));
		close(fd);
		return -1;
	}
	struct header h = {MAGIC, id, c->kind, c->flags, (uint32_t)c->request, (uint32_t)c->answer};
	step(w->self, "client writes header and request", id);
	if (!write_all(fd, &h, sizeof(h))) {
		complain("conn %u: header: %s", id, strerror(errno));
		close(fd);
		return -1;
	}
	int err;
	if (c->flags & F_DUP_CLIENT && id % 2)
		fd = copy_and_hand_off(fd, id, (int)id / 2); /* before the request: the copy writes it */
	c->c_sent = write_stream(fd, id, TO_SERVER, c->request, (int)id, &err);
	c->c_write_err = err;
	/* An unread server may answer and close before the whole request is written: then the guard
	 * (or, without it, the kernel after the reset) fails the rest. */
	if (err && !(c->kind == K_UNREAD && (err == EPIPE || err == ECONNRESET)))
		complain("conn %u (%s): request write: %s", id, kind_names[c->kind], strerror(err));
	if (c->kind == K_HALFCLOSE || c->kind == K_EARLY) {
		if (shutdown(fd, SHUT_WR) != 0)
			complain("conn %u: shutdown: %s", id, strerror(errno));
	}
	if (c->flags & F_DUP_CLIENT && id % 2 == 0)
		fd = copy_and_hand_off(fd, id, (int)id / 2);
	if (c->flags & F_EPOLL_CLIENT)
		watch(w->ep, fd, id, CLIENT);
	return fd;
}

/* The server's part, on whatever connection the accept returned: never waits for its client. */
static void serve(struct worker *w, int listener, int round)
{
	uint32_t seq = LOAD(fork_seq);
	step(w->self, "accept", 0);
	int fd = round % 2 ? accept4(listener, NULL, NULL, SOCK_CLOEXEC) : accept(listener, NULL, NULL);
	if (fd < 0) {
		complain("accept: %s", strerror(errno));
		return;
	}
	struct header h;
	step(w->self, "server reads header", 0);
	if (!read_all(fd, &h, sizeof(h)) || h.magic != MAGIC || h.id >= MAX_CONNS || h.kind >= K_COUNT) {
		complain("a header did not arrive whole");
		close(fd);
		return;
	}
	uint32_t id = h.id;
	struct conn *c = &conns[id];
	note_created(id, SERVER, seq);
	step(w->self, "server", id);
	if (h.flags & F_DUP_SERVER)
		fd = copy_and_hand_off(fd, id, round);
	if (h.flags & F_EPOLL_SERVER)
		watch(w->ep, fd, id, SERVER);
	int end = END_NONE, err = 0;
	long answer = h.answer;
	switch (h.kind) {
	case K_NORMAL:
	case K_CLOSEWAIT:
		if (h.flags & F_EPOLL_SERVER)
			wait_readable(w->ep, id, SERVER);
		c->s_recv = read_stream(fd, id, TO_SERVER, 0, h.request, round, &end);
		c->s_sent = write_stream(fd, id, TO_CLIENT, answer, round, &err);
		break;
	case K_HALFCLOSE:
		c->s_recv = read_stream(fd, id, TO_SERVER, 0, -1, round, &end);
		c->s_sent = write_stream(fd, id, TO_CLIENT, answer, round, &err);
		break;
	case K_EARLY: /* the client has shut down writing: these writes may meet its FIN */
		for (long at = 0; at < answer && !err;) {
			long n = answer - at < 1000 ? answer - at : 1000;
			uint8_t buf[1000];
			fill(buf, id, TO_CLIENT, at, (size_t)n);
			ssize_t rc = write_via(fd, buf, (size_t)n, round + (int)at);
			if (rc > 0)
				at += rc;
			else if (rc < 0 && errno == EPIPE) {
				c->s_refused++;
				break;
			} else if (!(rc < 0 && errno == EINTR))
				err = rc < 0 ? errno : EIO;
			c->s_sent = at;
		}
		c->s_recv = read_stream(fd, id, TO_SERVER, 0, -1, round, &end);
		break;
	case K_UNREAD: /* a few bytes of the request, then the answer, then close with the rest unread */
		c->s_recv = read_stream(fd, id, TO_SERVER, 0, h.request < UNREAD_PREFIX ? h.request : UNREAD_PREFIX, round, &end);
		c->s_sent = write_stream(fd, id, TO_CLIENT, answer, round, &err);
		break;
	}
	if (err)
		complain("conn %u (%s): answer write: %s", id, kind_names[h.kind], strerror(err));
	if (end == END_RESET || end == END_ERROR)
		complain("conn %u (%s): the server's read ended in %s", id, kind_names[h.kind],
			 end == END_RESET ? "a reset" : "an error");
	step(w->self, "server closes", id);
	closed(fd, id, SERVER, h.flags & F_DUP_SERVER);
	uint32_t after = LOAD(fork_seq);
	c->s_forked = after != seq || after % 2;
	c->s_done = true;
}

/* The client's part after its worker served someone: reads its answer, and for closewait writes late. */
static void client_finish(struct worker *w, struct conn *c, uint32_t id, int fd)
{
	int end = END_NONE;
	step(w->self, "client reads answer", id);
	if (c->flags & F_EPOLL_CLIENT)
		wait_readable(w->ep, id, CLIENT);
	if (c->kind != K_CLOSEWAIT) {
		c->c_recv = read_stream(fd, id, TO_CLIENT, 0, -1, (int)id + 1, &end);
	} else {
		c->c_recv = read_stream(fd, id, TO_CLIENT, 0, c->answer, (int)id + 1, &end);
		/* The server has closed: wait for its FIN (at most 3 s), then write as the seed's client did. */
		step(w->self, "client waits for the server's FIN", id);
		struct pollfd p = {.fd = fd, .events = POLLRDHUP};
		if (poll(&p, 1, 3000) == 1 && (p.revents & POLLRDHUP)) {
			uint8_t late[LATE_BYTES];
			memset(late, 'L', sizeof(late));
			ssize_t rc = write_via(fd, late, sizeof(late), (int)id);
			if (rc < 0 && errno == EPIPE)
				c->late = 1;
			else if (rc > 0)
				c->late = 2;
			else
				complain("conn %u: late write: %s", id, rc < 0 ? strerror(errno) : "wrote 0");
		}
	}
	/* The kernel reports a reset once: if the request write got it, the read then sees EOF. */
	c->c_end = c->c_write_err == ECONNRESET ? END_RESET : end;
	step(w->self, "client closes", id);
	closed(fd, id, CLIENT, c->flags & F_DUP_CLIENT);
}

static void one_round(struct worker *w, int round)
{
	step(w->self, "closes a handed-off copy", 0);
	close_handed_off(1);
	uint32_t id = __atomic_fetch_add(&next_conn, 1, __ATOMIC_RELAXED);
	if (id >= MAX_CONNS) {
		complain("too many connections");
		return;
	}
	struct conn *c = &conns[id];
	plan(w, round, &c->kind, &c->flags);
	c->request = 1000 + (long)(id * 37u % 12000u);
	c->answer = 500 + (long)(id * 53u % 12000u);
	c->c_used = true;
	const struct listener *l = c->flags & F_PRIVATE ? &w->own : &shared_listeners[c->flags & F_V6 ? 1 : 0];
	if (c->flags & F_PRIVATE) /* the own listener's family decides */
		c->flags = (c->flags & ~(uint32_t)F_V6) | (w->own.addr.ss_family == AF_INET6 ? F_V6 : 0);
	int fd = client_start(w, c, id, l);
	if (fd < 0)
		return;
	serve(w, l->fd, round);
	client_finish(w, c, id, fd);
	/* Level-triggered: anything still registered and ready is reported now. */
	struct epoll_event events[64];
	int n = epoll_wait(w->ep, events, 64, 0);
	if (n > 0)
		check_events(events, n);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->ep = epoll_create1(w->index % 2 ? EPOLL_CLOEXEC : 0);
	if (w->ep < 0) {
		complain("epoll_create1: %s", strerror(errno));
		return NULL;
	}
	if (!listen_on(&w->own, w->index % 2))
		return NULL;
	int my_rounds = in_child ? rounds / CHILD_ROUNDS_DIVISOR : rounds;
	for (int r = 0; r < my_rounds; r++)
		one_round(w, r);
	step(w->self, "done", 0);
	close(w->own.fd);
	close(w->ep); /* while other threads still close sockets, which the library takes out of it */
	doing[w->self] = NULL;
	return NULL;
}

/* --- the process's run, and its checks --- */

struct tally {
	long connections, bytes;
	long unread_eof, unread_reset, unread_copied, unread_copied_reset, unread_forked;
	long late_refused, late_lost, late_nofin, early_refused;
};

static void check_conn(uint32_t id, struct tally *t)
{
	struct conn *c = &conns[id];
	if (!c->c_used)
		return;
	const char *k = kind_names[c->kind];
	t->connections++;
	if (!c->s_done) {
		complain("conn %u (%s): never served", id, k);
		return;
	}
	/* The answer: always read to its end by the client. */
	if (c->c_recv != c->s_sent && !(c->kind == K_UNREAD && c->c_end == END_RESET))
		complain("conn %u (%s): the server wrote %ld answer bytes, the client received %ld (end %d)", id, k,
			 c->s_sent, c->c_recv, c->c_end);
	if (c->s_sent != c->answer && c->kind != K_EARLY)
		complain("conn %u (%s): the server wrote %ld of %ld answer bytes", id, k, c->s_sent, c->answer);
	/* The request: read to its end by the server, except in unread. */
	if (c->c_sent != c->request && !(c->kind == K_UNREAD && c->c_sent >= UNREAD_PREFIX))
		complain("conn %u (%s): the client wrote %ld of %ld request bytes", id, k, c->c_sent, c->request);
	if (c->kind == K_UNREAD ? c->s_recv != (c->request < UNREAD_PREFIX ? c->request : UNREAD_PREFIX)
				: c->s_recv != c->c_sent)
		complain("conn %u (%s): the client wrote %ld request bytes, the server received %ld", id, k, c->c_sent,
			 c->s_recv);
	if (c->c_end == END_RESET && c->kind != K_UNREAD)
		complain("conn %u (%s): the client's read ended in a reset", id, k);
	switch (c->kind) {
	case K_UNREAD:
		if (c->flags & F_DUP_SERVER) {
			t->unread_copied++;
			t->unread_copied_reset += c->c_end == END_RESET;
		} else if (c->s_forked) {
			t->unread_forked++;
		} else {
			t->unread_eof += c->c_end == END_EOF;
			t->unread_reset += c->c_end == END_RESET;
		}
		break;
	case K_CLOSEWAIT:
		t->late_refused += c->late == 1;
		t->late_lost += c->late == 2;
		t->late_nofin += c->late == 0;
		break;
	case K_EARLY:
		t->early_refused += c->s_refused;
		break;
	}
	t->bytes += c->c_recv + c->s_recv;
}

/* Waits (at most 10 s) until the internet sockets are back at base; returns the count then. */
static int settle(int base, int *other)
{
	int tcp = -1;
	for (int i = 0; i < 1000; i++) {
		count_descriptors(&tcp, other);
		if (tcp <= base)
			break;
		pause_ms(10);
	}
	return tcp;
}

static bool listen_shared(void)
{
	return listen_on(&shared_listeners[0], false) && listen_on(&shared_listeners[1], true);
}

/* One close with unread input, made here before any other thread exists, makes the library's drain
 * (its epoll instance, pipe and thread) before the checks of -t begin, so that none of them meets a
 * drain being made. Without the library it resets its connection, which nothing checks. */
static void warm_up(void)
{
	const struct listener *l = &shared_listeners[0];
	char buf[512] = {0};
	int queued = 0, server = -1, client = socket(AF_INET, SOCK_STREAM, 0);
	if (client < 0 || connect(client, (struct sockaddr *)&l->addr, l->len) != 0 || send(client, buf, 100, 0) != 100 ||
	    (server = accept(l->fd, NULL, NULL)) < 0) {
		complain("warm-up connection: %s", strerror(errno));
		if (client >= 0)
			close(client);
		return;
	}
	for (int i = 0; i < 100 && ioctl(server, FIONREAD, &queued) == 0 && queued < 100; i++)
		pause_ms(10);
	close(server);
	while (read(client, buf, sizeof(buf)) > 0)
		;
	close(client);
}

static bool workers_done;

/* Closes handed-off descriptors as they come, a millisecond or so after they were handed off: a
 * copy's owner may be blocked reading until the original is closed too. */
static void *closer(void *unused)
{
	(void)unused;
	while (!LOAD(workers_done)) {
		close_handed_off(-1);
		pause_ms(1);
	}
	return NULL;
}

/* Runs n workers, and a thread that closes what they hand off, to their end. */
static void run_workers(int n)
{
	struct worker ws[WORKERS];
	pthread_t threads[WORKERS], closing;
	workers_done = false;
	if (pthread_create(&closing, NULL, closer, NULL) != 0) {
		complain("pthread_create failed");
		return;
	}
	for (int i = 0; i < n; i++) {
		ws[i] = (struct worker){.self = i, .index = i, .ep = -1};
		if (pthread_create(&threads[i], NULL, worker_main, &ws[i]) != 0) {
			complain("pthread_create failed");
			n = i;
			break;
		}
	}
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	__atomic_store_n(&workers_done, true, __ATOMIC_RELEASE);
	pthread_join(closing, NULL);
}

/* After the workers: closes what is left, checks every connection and the descriptors. */
static struct tally finish_run(int base_tcp, int base_other)
{
	struct tally t = {0};
	close_handed_off(-1);
	close(shared_listeners[0].fd);
	close(shared_listeners[1].fd);
	uint32_t used = LOAD(next_conn);
	for (uint32_t id = 0; id < used && id < MAX_CONNS; id++)
		check_conn(id, &t);
	int other;
	int tcp = settle(base_tcp, &other);
	if (tcp != base_tcp)
		complain("%d internet sockets open at the start, %d at the end", base_tcp, tcp);
	if (other > base_other + 3) {
		char list[1024];
		list_descriptors(&tcp, &other, list, sizeof(list));
		complain("%d other descriptors open at the start, %d at the end:%s", base_other, other, list);
	}
	if (strict) {
		if (t.late_lost || t.late_nofin)
			complain("late writes into CLOSE_WAIT: %ld refused, %ld written and lost, %ld saw no FIN", t.late_refused,
				 t.late_lost, t.late_nofin);
		if (t.unread_reset)
			complain("unread closes: %ld ended in EOF, %ld in a reset", t.unread_eof, t.unread_reset);
		if (t.unread_copied_reset != t.unread_copied)
			complain("unread closes of copied sockets: %ld of %ld reset (a shared socket must not linger)",
				 t.unread_copied_reset, t.unread_copied);
	}
	return t;
}

static void reset_state(void)
{
	memset(conns, 0, sizeof(conns));
	memset(regs, 0, sizeof(regs));
	next_conn = 0;
	fork_seq = 0;
	failures = 0;
	handoff_count = 0;
	pthread_mutex_init(&handoff_lock, NULL); /* a parent's thread may have held it at the fork */
	for (int i = 0; i < MAX_THREADS; i++)
		doing[i] = NULL;
}

/* A child's work, in the forked copy or in the program run anew (-C). */
static int child_run(void)
{
	int base_tcp, base_other, self = MAX_THREADS - 1; /* the forker's slot: no forker in a child */
	step(self, "counts descriptors", 0);
	count_descriptors(&base_tcp, &base_other);
	step(self, "listens", 0);
	if (!listen_shared())
		return 1;
	step(self, "warms up", 0);
	warm_up();
	step(self, "runs workers", 0);
	run_workers(CHILD_WORKERS);
	step(self, "checks", 0);
	finish_run(base_tcp, base_other);
	return failures ? 1 : 0;
}

/* A forked child: closes everything it inherited but the pipe that tells its parent so, then runs,
 * or with -x runs the program anew (argv) for it. */
static int child_main(int told, char *const *argv)
{
	in_child = true;
	alarm((unsigned int)deadline_s);
	if ((told > 3 && close_range(3, (unsigned int)told - 1, 0) != 0) || close_range((unsigned int)told + 1, ~0U, 0) != 0) {
		complain("close_range: %s", strerror(errno));
		return 1;
	}
	reset_state();
	if (write(told, "x", 1) != 1 || close(told) != 0) {
		complain("telling the parent: %s", strerror(errno));
		return 1;
	}
	if (argv) {
		execv("/proc/self/exe", argv);
		complain("exec: %s", strerror(errno));
		return 1;
	}
	return child_run();
}

static bool exec_children;

static void *forker(void *arg)
{
	int self = (int)(long)arg;
	char deadline[16], rounds_arg[16];
	snprintf(deadline, sizeof(deadline), "%d", deadline_s);
	snprintf(rounds_arg, sizeof(rounds_arg), "%d", rounds);
	char *child_argv[] = {"stress", "-C", "-d", deadline, "-r", rounds_arg, strict ? "-t" : NULL, NULL};
	pid_t pids[64];
	int started = 0;
	for (int k = 0; k < children && k < 64; k++) {
		step(self, "forks", (uint32_t)k);
		int told[2];
		if (pipe2(told, O_CLOEXEC) != 0) {
			complain("pipe2: %s", strerror(errno));
			break;
		}
		__atomic_add_fetch(&fork_seq, 1, __ATOMIC_ACQ_REL); /* odd: a child may hold anything open now */
		pid_t pid = fork();
		if (pid == 0) {
			int status = child_main(told[1], exec_children ? child_argv : NULL);
			fflush(NULL);
			exit(status); /* exit, not _exit: the library's exit path runs in the child too */
		}
		close(told[1]);
		char byte;
		if (pid < 0)
			complain("fork: %s", strerror(errno));
		else if (read(told[0], &byte, 1) != 1)
			complain("child %d did not say it closed what it inherited", k);
		close(told[0]);
		__atomic_add_fetch(&fork_seq, 1, __ATOMIC_ACQ_REL); /* even: the child holds none of ours */
		if (pid > 0)
			pids[started++] = pid;
		pause_ms(10); /* the children start while the workers are busy, and run side by side */
	}
	for (int k = 0; k < started; k++) {
		int status;
		step(self, "waits for child", (uint32_t)k);
		while (waitpid(pids[k], &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			complain("child %d failed (status 0x%x)", k, (unsigned int)status);
	}
	doing[self] = NULL;
	return NULL;
}

int main(int argc, char **argv)
{
	int opt;
	bool child = false;
	while ((opt = getopt(argc, argv, "td:r:c:xC")) != -1) {
		switch (opt) {
		case 't': strict = true; break;
		case 'x': exec_children = true; break;
		case 'C': child = true; break;
		case 'd': deadline_s = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		case 'c': children = atoi(optarg); break;
		default: return 2;
		}
	}
	if (rounds < CHILD_ROUNDS_DIVISOR || rounds > MAX_ROUNDS || children < 0 || children > 64 || deadline_s < 1) {
		fprintf(stderr, "usage: stress [-t] [-x] [-d SECONDS] [-r ROUNDS 4..%d] [-c CHILDREN]\n", MAX_ROUNDS);
		return 2;
	}
	signal(SIGALRM, on_deadline);
	alarm((unsigned int)deadline_s);
	signal(SIGPIPE, SIG_IGN);
	if (child) {
		in_child = true;
		return child_run();
	}
	int base_tcp, base_other;
	count_descriptors(&base_tcp, &base_other);
	if (!listen_shared())
		return 1;
	warm_up();

	pthread_t fork_thread;
	bool forking = children > 0 && pthread_create(&fork_thread, NULL, forker, (void *)(long)WORKERS) == 0;
	run_workers(WORKERS);
	if (forking)
		pthread_join(fork_thread, NULL);
	struct tally t = finish_run(base_tcp, base_other);
	if (failures) {
		printf("failed: %ld failures (see stderr)\n", failures);
		return 1;
	}
	printf("ok connections=%ld bytes=%ld\n", t.connections, t.bytes);
	printf("unread eof=%ld reset=%ld copied_reset=%ld/%ld forked=%ld late refused=%ld lost=%ld nofin=%ld "
	       "early_refused=%ld\n",
	       t.unread_eof, t.unread_reset, t.unread_copied_reset, t.unread_copied, t.unread_forked, t.late_refused,
	       t.late_lost, t.late_nofin, t.early_refused);
	return 0;
}
