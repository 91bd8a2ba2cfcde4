#include "log.h"
#include "clock.h"
#include "config.h"
#include "fdstate.h"
#include "ownfd.h"
#include "real.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024
#define RATE_LIMIT_MS 1000
#define SYSLOG_PRIORITY "<29>" /* LOG_DAEMON | LOG_NOTICE */

enum rate_limit {
	PER_SOCKET,  /* the socket's traffic repeats it: once a second per socket */
	PER_CALL,    /* once per listen() or close(): the program's own calls set the pace */
	PER_PROCESS, /* a shortage repeats it on every socket: once a second per process */
};

static const struct {
	const char *event, *action, *counter;
	enum rate_limit rate;
} event_names[EV_COUNT] = {
	[EV_CLOSEWAIT_BLOCKED] = {"closewait", "blocked", "closewait_blocked", PER_SOCKET},
	[EV_CLOSEWAIT_OBSERVED] = {"closewait", "observed", "closewait_observed", PER_SOCKET},
	[EV_BACKLOG_RAISED] = {"backlog", "raised", "backlog_raised", PER_CALL},
	[EV_BACKLOG_OBSERVED] = {"backlog", "observed", "backlog_observed", PER_CALL},
	[EV_BACKLOG_TRUNCATED] = {"backlog", "truncated", "backlog_truncated", PER_CALL},
	[EV_ACCEPT_QUEUE_FULL] = {"accept_queue", "full", "accept_queue_full", PER_SOCKET},
	[EV_LINGER_STARTED] = {"linger", "started", "linger_started", PER_CALL},
	[EV_LINGER_DRAINED] = {"linger", "drained", "linger_drained", PER_CALL},
	[EV_LINGER_TIMEOUT] = {"linger", "timeout", "linger_timeout", PER_CALL},
	[EV_LINGER_OBSERVED] = {"linger", "observed", "linger_observed", PER_CALL},
	[EV_LINGER_SKIPPED] = {"linger", "skipped", "linger_skipped", PER_PROCESS},
};

static uint64_t counters[EV_COUNT];
/* Lines that could not be written when they came (a pipe full or without a reader, no /dev/log): the
 * summary's log_dropped. */
static uint64_t dropped;

/* Where lines go. stderr only while fd 2 is still the file it was at load, and never through a copy
 * kept open (a copy would keep a pipe open after the program closed its end): see write_stderr.
 * Any thread that logs may find the destination gone and change it: one at a time (repairing). */
static enum log_dest dest;
static struct stat stderr_at_load;
static int own_fd = -1; /* the log file or the syslog socket */
static int repairing;

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

/* --- a line under construction --- */

struct line {
	char text[LINE_MAX_BYTES];
	size_t len;
};

static void put(struct line *l, const char *s)
{
	size_t n = strlen(s);
	if (n > sizeof(l->text) - 1 - l->len)
		n = sizeof(l->text) - 1 - l->len; /* keep room for the newline */
	memcpy(l->text + l->len, s, n);
	l->len += n;
}

static void put_number(struct line *l, long long v)
{
	char digits[24], *p = digits + sizeof(digits);
	unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
	*--p = '\0';
	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	put(l, p);
}

static void put_padded(struct line *l, unsigned int v, int width)
{
	char digits[12];
	for (int i = width - 1; i >= 0; i--, v /= 10)
		digits[i] = (char)('0' + v % 10);
	digits[width] = '\0';
	put(l, digits);
}

/* A JSON string, escaped; text format values are printed bare. */
static void put_json_string(struct line *l, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	put(l, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char plain[2] = {(char)c, 0};
		char control[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
		if (c == '"' || c == '\\')
			put(l, "\\");
		put(l, c < 0x20 ? control : plain);
	}
	put(l, "\"");
}

/* RFC 3339 UTC with milliseconds, computed by hand: gmtime_r is not async-signal-safe. */
static void put_time(struct line *l)
{
	struct timespec ts;
	clock_read(CLOCK_REALTIME, &ts); /* the kernel's time, whatever another preload makes of clock_gettime */
	long long days = ts.tv_sec / 86400, secs = ts.tv_sec % 86400;
	/* civil_from_days (H. Hinnant): proleptic Gregorian date of a day count since 1970-01-01 */
	long long z = days + 719468, era = z / 146097;
	unsigned int doe = (unsigned int)(z - era * 146097);
	unsigned int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned int doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	unsigned int day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
	long long year = yoe + era * 400 + (month <= 2);
	put_padded(l, (unsigned int)year, 4);
	put(l, "-");
	put_padded(l, month, 2);
	put(l, "-");
	put_padded(l, day, 2);
	put(l, "T");
	put_padded(l, (unsigned int)(secs / 3600), 2);
	put(l, ":");
	put_padded(l, (unsigned int)(secs / 60 % 60), 2);
	put(l, ":");
	put_padded(l, (unsigned int)(secs % 60), 2);
	put(l, ".");
	put_padded(l, (unsigned int)(ts.tv_nsec / 1000000), 3);
	put(l, "Z");
}

void socket_addresses_read(int fd, struct socket_addresses *a)
{
	int saved = errno;
	socklen_t len = sizeof(a->local);
	if (getsockname(fd, (struct sockaddr *)&a->local, &len) != 0)
		a->local.sin6_family = 0;
	len = sizeof(a->peer);
	if (getpeername(fd, (struct sockaddr *)&a->peer, &len) != 0)
		a->peer.sin6_family = 0;
	errno = saved;
}

/* "127.0.0.1:80" or "[::1]:80"; "-" when unknown. */
static void format_address(const struct sockaddr_in6 *address, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN];
	const void *ip;
	unsigned int port;
	strcpy(out, "-");
	if (address->sin6_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
		ip = &v4->sin_addr;
		port = ntohs(v4->sin_port);
	} else if (address->sin6_family == AF_INET6) {
		ip = &address->sin6_addr;
		port = ntohs(address->sin6_port);
	} else
		return;
	if (!inet_ntop(address->sin6_family, ip, host, sizeof(host)))
		return;
	struct line l = {.len = 0};
	put(&l, address->sin6_family == AF_INET6 ? "[" : "");
	put(&l, host);
	put(&l, address->sin6_family == AF_INET6 ? "]:" : ":");
	put_number(&l, port);
	l.text[l.len < size ? l.len : size - 1] = '\0';
	memcpy(out, l.text, strlen(l.text) + 1);
}

/* The program's name, copied at load: programs that retitle themselves (nginx's "nginx: worker
 * process") overwrite the argv memory program_invocation_short_name points into. Cut to 100 bytes,
 * so that even escaped it leaves room for the rest of a line (and JSON's closing '}'). */
static char prog[101];

/* Opens the line: "tcprare[PID] prog: " or '{"time":...,"pid":...,"prog":"..."'. */
static void begin(struct line *l)
{
	l->len = 0;
	if (config.log_format == LOG_JSON) {
		put(l, "{\"time\":\"");
		put_time(l);
		put(l, "\",\"pid\":");
		put_number(l, getpid());
		put(l, ",\"prog\":");
		put_json_string(l, prog);
	} else {
		put(l, "tcprare[");
		put_number(l, getpid());
		put(l, "] ");
		put(l, prog);
		put(l, ":");
	}
}

static void put_field(struct line *l, const struct log_field *f)
{
	if (config.log_format == LOG_JSON) {
		put(l, ",");
		put_json_string(l, f->key);
		put(l, ":");
		if (f->text)
			put_json_string(l, f->text);
		else
			put_number(l, f->number);
	} else {
		put(l, " ");
		put(l, f->key);
		put(l, "=");
		if (f->text)
			put(l, f->text);
		else
			put_number(l, f->number);
	}
}

/* --- writing a line without harm to the host: no signal, no wait --- */

static void note_dropped(void)
{
	__atomic_add_fetch(&dropped, 1, __ATOMIC_RELAXED);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Takes back the signal this thread's write queued, unless one was pending before: the write's then
 * merged into it, and that one is the program's. */
static void take_back(int sig, const sigset_t *pending_before)
{
	sigset_t one;
	if (sigismember(pending_before, sig))
		return;
	sigemptyset(&one);
	sigaddset(&one, sig);
	sigtimedwait(&one, NULL, &(struct timespec){0, 0});
}

/* write(2) that cannot signal the host. The kernel raises SIGPIPE on the writing thread when a pipe's
 * reader is gone and SIGXFSZ when a file passes RLIMIT_FSIZE (both kill by default), and stops the
 * whole process with SIGTTOU for a background write to a TOSTOP terminal. Blocked on this thread for
 * the write, the first two stay queued and are taken back; a blocked SIGTTOU the kernel treats as
 * ignored, and the write goes through. True if the whole line went out. Preserves errno. */
static bool write_quietly(int fd, const char *text, size_t len)
{
	int saved = errno;
	sigset_t quiet, old, pending;
	sigemptyset(&quiet);
	sigaddset(&quiet, SIGPIPE);
	sigaddset(&quiet, SIGXFSZ);
	sigaddset(&quiet, SIGTTOU);
	pthread_sigmask(SIG_BLOCK, &quiet, &old);
	sigpending(&pending);
	ssize_t n = real.write(fd, text, len);
	if (n < 0 && errno == EPIPE)
		take_back(SIGPIPE, &pending);
	if (n < 0 && errno == EFBIG)
		take_back(SIGXFSZ, &pending);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return n == (ssize_t)len;
}

/* How a line reaches stderr without waiting, by the kind of file it is. fd 2's open file description
 * is the program's: blocking, and not ours to make non-blocking. */
enum stderr_route {
	STDERR_WRITE,  /* a regular file, a disk, /dev/null and its kin: a write does not wait for a reader */
	STDERR_SEND,   /* a socket (TCPRARE_LOG=stderr said so): a send that does not wait */
	STDERR_REOPEN, /* a pipe, a FIFO, a terminal, another device: through a description of our own */
};

static enum stderr_route stderr_route(const struct stat *st)
{
	/* Character major 1 is Linux's memory devices: null, zero, full, random, urandom, kmsg. */
	if (S_ISREG(st->st_mode) || S_ISBLK(st->st_mode) || (S_ISCHR(st->st_mode) && major(st->st_rdev) == 1))
		return STDERR_WRITE;
	return S_ISSOCK(st->st_mode) ? STDERR_SEND : STDERR_REOPEN;
}

/* The pipe or terminal on fd 2, opened anew for one line, non-blocking and ours alone: the open fails
 * at once where no process reads the pipe (ENXIO), the write where the pipe is full (EAGAIN) or a
 * terminal is stopped. Closed at once: held open, it would keep the pipe's write end open after the
 * program closed its own, and the reader would never see EOF. Written only if it is still the file
 * *expected (the program may have replaced fd 2 meanwhile). Without /proc, the line is dropped: a
 * write that may wait is no option. thread-self: also right for a thread with a descriptor table of
 * its own, and after the main thread exited (its /proc/self/fd is gone then). */
static bool write_reopened(const struct stat *expected, const char *text, size_t len)
{
	const int flags = O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	struct stat st;
	int fd = open("/proc/thread-self/fd/2", flags);
	if (fd < 0 && errno == ENOENT) /* Linux before 3.17 */
		fd = open("/proc/self/fd/2", flags);
	if (fd < 0)
		return false;
	bool sent = fstat(fd, &st) == 0 && same_file(&st, expected) && write_quietly(fd, text, len);
	real.close(fd);
	return sent;
}

/* One line, with its newline, to fd 2, which the caller found to be the file *at. */
static bool write_stderr(const struct stat *at, const char *text, size_t len)
{
	switch (stderr_route(at)) {
	case STDERR_WRITE:
		return write_quietly(STDERR_FILENO, text, len);
	case STDERR_SEND:
		return real.send(STDERR_FILENO, text, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len;
	default:
		return write_reopened(at, text, len);
	}
}

/* --- destinations --- */

static bool stderr_unchanged(void)
{
	struct stat now;
	return fstat(STDERR_FILENO, &now) == 0 && same_file(&now, &stderr_at_load);
}

static int connect_syslog(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX, .sun_path = "/dev/log"};
	int fd = real.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && real.connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		real.close(fd);
		fd = -1;
	}
	return fd;
}

static void open_syslog(void)
{
	int fd = connect_syslog();
	if (fd >= 0)
		ownfd_keep(fd, &own_fd);
}

/* "<PRI>tcprare[PID]: " and the line, in one datagram; the syslog tag replaces the text format's own
 * "tcprare[PID] " prefix. A full or missing syslog daemon drops it: true if it was sent. */
static bool send_syslog(int fd, const struct line *l)
{
	struct line datagram = {.len = 0};
	const char *body = l->text;
	size_t len = l->len;
	if (len > 8 && !memcmp(body, "tcprare[", 8)) {
		const char *space = memchr(body, ' ', len);
		if (space) {
			len -= (size_t)(space + 1 - body);
			body = space + 1;
		}
	}
	put(&datagram, SYSLOG_PRIORITY "tcprare[");
	put_number(&datagram, getpid());
	put(&datagram, "]: ");
	size_t n = len < sizeof(datagram.text) - datagram.len ? len : sizeof(datagram.text) - datagram.len;
	memcpy(datagram.text + datagram.len, body, n);
	return real.send(fd, datagram.text, datagram.len + n, MSG_NOSIGNAL | MSG_DONTWAIT) ==
	       (ssize_t)(datagram.len + n);
}

/* TCPRARE_LOG's path with %p replaced by the pid. */
static void log_file_path(char path[PATH_MAX])
{
	struct line pid = {.len = 0};
	size_t n = 0;
	put_number(&pid, getpid());
	pid.text[pid.len] = '\0';
	for (const char *p = config.log_path; *p && n < PATH_MAX - 1; p++) {
		if (p[0] == '%' && p[1] == 'p') {
			for (size_t i = 0; i < pid.len && n < PATH_MAX - 1; i++)
				path[n++] = pid.text[i];
			p++;
		} else
			path[n++] = *p;
	}
	path[n] = '\0';
}

/* Non-blocking, and kept so (the descriptor is ours alone): a FIFO without a reader fails to open at
 * once (ENXIO) instead of holding the program before main, and a full one drops lines. */
static int open_file(void)
{
	char path[PATH_MAX];
	log_file_path(path);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0644);
	return fd < 0 ? -1 : ownfd_keep(fd, &own_fd);
}

/* Why open_file failed with err, in words for the one line that says so. */
static const char *open_file_failure(int err)
{
	char path[PATH_MAX];
	struct stat st;
	log_file_path(path);
	if (err == ENXIO && stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
		return "no process reads that FIFO, and the program's start does not wait for one";
	return strerror(err);
}

static bool stderr_usable(void)
{
	struct stat st;
	return fstat(STDERR_FILENO, &st) == 0 && !S_ISSOCK(st.st_mode);
}

void log_open(void)
{
	int saved = errno;
	strncpy(prog, program_invocation_short_name, sizeof(prog) - 1);
	dest = config.log;
	if (dest == LOG_FILE && open_file() < 0) {
		const char *reason = open_file_failure(errno);
		log_problem((const char *[]){"tcprare: TCPRARE_LOG=", config.log_path, " cannot be opened (", reason,
					     "): expected a writable file, or a FIFO that a process reads; using stderr",
					     NULL});
		unsetenv("TCPRARE_LOG"); /* said once, as config.c does for a bad value */
		dest = LOG_AUTO;
	}
	if (dest == LOG_AUTO)
		dest = stderr_usable() ? LOG_STDERR : LOG_SYSLOG;
	if (dest == LOG_STDERR && fstat(STDERR_FILENO, &stderr_at_load) != 0)
		dest = LOG_SYSLOG;
	if (dest == LOG_SYSLOG)
		open_syslog();
	errno = saved;
}

void log_after_fork_child(void)
{
	/* Another thread of the parent may have been repairing the destination at the fork: in the
	 * child that thread does not exist, and would hold the turn forever. */
	STORE(repairing, 0);
	/* The child's summary speaks for the child, not again for its parent. */
	for (int i = 0; i < EV_COUNT; i++)
		__atomic_store_n(&counters[i], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&dropped, 0, __ATOMIC_RELAXED);
	if (dest == LOG_FILE && strstr(config.log_path, "%p")) {
		ownfd_drop(&own_fd);
		open_file();
	}
}

/* Makes sure lines still go where they should, and says where that is. */
static enum log_dest repair_destination(void)
{
	if (LOAD(dest) == LOG_STDERR && !stderr_unchanged()) {
		STORE(dest, LOG_SYSLOG); /* the program closed or replaced stderr: never write into its new file */
		open_syslog();
	}
	if (LOAD(dest) == LOG_FILE && !ownfd_intact(&own_fd))
		open_file(); /* closed behind our back (closefrom): reopen */
	if (LOAD(dest) == LOG_SYSLOG && !ownfd_intact(&own_fd))
		open_syslog();
	return LOAD(dest);
}

/* Sends a finished line (without its newline) with one write, or drops and counts it. A thread that
 * finds another repairing the destination waits for it, boundedly: if it interrupted that very
 * thread (a close() in a signal handler), the line is dropped. */
static void emit(struct line *l)
{
	int saved = errno;
	int turn = 0;
	while (__atomic_exchange_n(&repairing, 1, __ATOMIC_ACQUIRE))
		if (++turn == 1000) {
			note_dropped();
			errno = saved;
			return;
		} else
			sched_yield();
	enum log_dest to = repair_destination();
	int fd = LOAD(own_fd);
	STORE(repairing, 0);
	bool sent = false;
	if (to == LOG_SYSLOG && fd >= 0) {
		sent = send_syslog(fd, l);
	} else if (to == LOG_STDERR || (to == LOG_FILE && fd >= 0)) {
		l->text[l->len++] = '\n';
		sent = to == LOG_STDERR ? write_stderr(&stderr_at_load, l->text, l->len)
					: write_quietly(fd, l->text, l->len);
	}
	if (!sent)
		note_dropped();
	errno = saved;
}

/* The process-wide rate limit, as fdstate keeps one per socket. */
static bool process_log_allowed(uint32_t *suppressed)
{
	static uint32_t last_ms, refused;
	uint32_t now = fdstate_now_ms() | 1, last = __atomic_load_n(&last_ms, __ATOMIC_RELAXED);
	if ((last && now - last < RATE_LIMIT_MS) ||
	    !__atomic_compare_exchange_n(&last_ms, &last, now, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		__atomic_add_fetch(&refused, 1, __ATOMIC_RELAXED);
		return false;
	}
	*suppressed = __atomic_exchange_n(&refused, 0, __ATOMIC_RELAXED);
	return true;
}

static bool allowed(enum log_event event, int fd, uint32_t *suppressed)
{
	*suppressed = 0;
	switch (event_names[event].rate) {
	case PER_SOCKET:
		return fdstate_log_allowed(fd, RATE_LIMIT_MS, suppressed);
	case PER_PROCESS:
		return process_log_allowed(suppressed);
	default:
		return true;
	}
}

void log_silence(void)
{
	STORE(dest, LOG_OFF);
}

bool log_enabled(void)
{
	return LOAD(dest) != LOG_OFF;
}

/* Counts the event; true if its line is to be written. */
static bool count(enum log_event event, int fd, uint32_t *suppressed)
{
	__atomic_add_fetch(&counters[event], 1, __ATOMIC_RELAXED);
	return LOAD(dest) != LOG_OFF && allowed(event, fd, suppressed);
}

static void write_line(enum log_event event, int shown_fd, const struct socket_addresses *addresses,
		       uint32_t suppressed, const struct log_field *fields, size_t nfields)
{
	int saved = errno;
	char local[INET6_ADDRSTRLEN + 8], peer[INET6_ADDRSTRLEN + 8];
	format_address(&addresses->local, local, sizeof(local));
	format_address(&addresses->peer, peer, sizeof(peer));
	struct line l;
	begin(&l);
	const struct log_field head[] = {
		FIELD_TEXT("event", event_names[event].event), FIELD_TEXT("action", event_names[event].action),
		FIELD_NUM("fd", shown_fd), FIELD_TEXT("local", local), FIELD_TEXT("peer", peer)};
	if (config.log_format == LOG_TEXT) {
		put(&l, " ");
		put(&l, head[0].text);
		put(&l, " ");
		put(&l, head[1].text);
	}
	for (size_t i = config.log_format == LOG_TEXT ? 2 : 0; i < sizeof(head) / sizeof(head[0]); i++)
		put_field(&l, &head[i]);
	for (size_t i = 0; i < nfields; i++)
		put_field(&l, &fields[i]);
	if (suppressed)
		put_field(&l, &FIELD_NUM("suppressed", suppressed));
	if (config.log_format == LOG_JSON)
		put(&l, "}");
	emit(&l);
	errno = saved;
}

void log_event_at(enum log_event event, int shown_fd, const struct socket_addresses *addresses,
		  const struct log_field *fields, size_t nfields)
{
	uint32_t suppressed;
	if (count(event, shown_fd, &suppressed))
		write_line(event, shown_fd, addresses, suppressed, fields, nfields);
}

void log_event(enum log_event event, int fd, const struct log_field *fields, size_t nfields)
{
	uint32_t suppressed;
	struct socket_addresses addresses;
	if (!count(event, fd, &suppressed))
		return;
	socket_addresses_read(fd, &addresses);
	write_line(event, fd, &addresses, suppressed, fields, nfields);
}

void log_summary(const struct log_field *extra, size_t nextra)
{
	/* A process that never had a TCP socket (a shell, a helper the program ran) has nothing to say. */
	if (!config.summary || LOAD(dest) == LOG_OFF || fdstate_sockets_seen() == 0)
		return;
	struct line l;
	begin(&l);
	if (config.log_format == LOG_JSON)
		put(&l, ",\"event\":\"summary\"");
	else
		put(&l, " summary");
	put_field(&l, &FIELD_NUM("tcp_sockets", fdstate_sockets_seen()));
	for (int i = 0; i < EV_COUNT; i++)
		put_field(&l, &FIELD_NUM(event_names[i].counter, __atomic_load_n(&counters[i], __ATOMIC_RELAXED)));
	put_field(&l, &FIELD_NUM("log_dropped", __atomic_load_n(&dropped, __ATOMIC_RELAXED)));
	for (size_t i = 0; i < nextra; i++)
		put_field(&l, &extra[i]);
	if (config.log_format == LOG_JSON)
		put(&l, "}");
	emit(&l);
}

void log_problem(const char *const *parts)
{
	struct line l = {.len = 0};
	for (; *parts; parts++)
		put(&l, *parts);
	int saved = errno;
	struct stat st;
	bool sent = false;
	if (fstat(STDERR_FILENO, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		l.text[l.len++] = '\n';
		sent = write_stderr(&st, l.text, l.len);
	} else {
		int fd = connect_syslog();
		if (fd >= 0) {
			sent = send_syslog(fd, &l);
			real.close(fd);
		}
	}
	if (!sent)
		note_dropped();
	errno = saved;
}
