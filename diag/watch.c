/* tcprare-watch: the rare TCP states as they happen on this host, for any program (static, Go,
 * setuid: whatever LD_PRELOAD cannot reach), from kernel tracepoints (watch.bpf.c).
 *
 *   tcprare-watch [--json] [--duration S] [--netns PATH|INODE] [--verbose]
 * One line per event on stdout, the counts at exit; "tcprare-watch: ready" on stderr once attached.
 * See docs/tcprare-watch.8. */
#include <arpa/inet.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "owners.h"
#include "watch.h"
#include "watch.skel.h"

#ifndef TCPRARE_VERSION
#define TCPRARE_VERSION "dev"
#endif

static struct {
	bool json, verbose;
	double duration; /* seconds; 0: until stopped */
	uint32_t netns;  /* inode; 0: every namespace */
	const char *netns_name;
} opt;

static volatile sig_atomic_t stopping;
static unsigned long long counts[4];
static const char *const event_words[4][2] = {
	[WATCH_CLOSEWAIT_LOST] = {"closewait", "lost"},
	[WATCH_LINGER_RESET] = {"linger", "reset"},
	[WATCH_ACCEPT_OVERFLOW] = {"accept_queue", "overflow"},
};

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void usage(FILE *to)
{
	fprintf(to, "usage: tcprare-watch [--json] [--duration S] [--netns PATH|INODE] [--verbose]\n"
		    "Prints CLOSE_WAIT writes lost to a reset, closes that reset a connection with unread\n"
		    "input, and accept-queue overflows as they happen, in every network namespace.\n");
}

/* --- who owns a socket: /proc/PID/fd links read "socket:[INODE]" ---
 * A busy host can reset hundreds of connections a second: one walk of /proc serves every lookup for
 * a second (an index of all socket inodes), and a candidate the kernel named is checked alone. */

static bool holds(pid_t pid, uint64_t inode)
{
	char dir[64], link[64], want[48];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	snprintf(want, sizeof(want), "socket:[%llu]", (unsigned long long)inode);
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool found = false;
	struct dirent *fd;
	while (!found && (fd = readdir(d))) {
		ssize_t n = fd->d_name[0] == '.' ? -1 : readlinkat(dirfd(d), fd->d_name, link, sizeof(link) - 1);
		found = n > 0 && (size_t)n == strlen(want) && !memcmp(link, want, (size_t)n);
	}
	closedir(d);
	return found;
}

struct socket_owner {
	uint64_t inode;
	pid_t pid;
};
static struct {
	struct socket_owner *entries;
	size_t count, size;
	time_t built;
} sockets;

static int by_inode(const void *a, const void *b)
{
	uint64_t x = ((const struct socket_owner *)a)->inode, y = ((const struct socket_owner *)b)->inode;
	return x < y ? -1 : x > y;
}

static void index_sockets(void)
{
	DIR *proc = opendir("/proc");
	sockets.count = 0;
	sockets.built = time(NULL);
	if (!proc)
		return;
	struct dirent *p;
	while ((p = readdir(proc))) {
		char dir[300], link[64];
		if (!isdigit((unsigned char)p->d_name[0]))
			continue;
		snprintf(dir, sizeof(dir), "/proc/%s/fd", p->d_name);
		DIR *d = opendir(dir);
		struct dirent *fd;
		while (d && (fd = readdir(d))) {
			unsigned long long inode;
			ssize_t n = fd->d_name[0] == '.' ? -1 : readlinkat(dirfd(d), fd->d_name, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (sscanf(link, "socket:[%llu]", &inode) != 1)
				continue;
			if (sockets.count == sockets.size) {
				size_t size = sockets.size ? 2 * sockets.size : 4096;
				struct socket_owner *grown = realloc(sockets.entries, size * sizeof(*grown));
				if (!grown)
					break;
				sockets.entries = grown;
				sockets.size = size;
			}
			sockets.entries[sockets.count++] = (struct socket_owner){inode, (pid_t)atoi(p->d_name)};
		}
		if (d)
			closedir(d);
	}
	closedir(proc);
	if (sockets.count)
		qsort(sockets.entries, sockets.count, sizeof(*sockets.entries), by_inode);
}

static pid_t indexed_owner(uint64_t inode)
{
	struct socket_owner key = {.inode = inode}, *found;
	found = sockets.count ? bsearch(&key, sockets.entries, sockets.count, sizeof(key), by_inode) : NULL;
	return found ? found->pid : 0;
}

/* The process holding the socket: the candidate the kernel saw if it holds it, else one found
 * holding it; 0 if none (gone, or hidden from us). */
static pid_t owner_of(uint64_t inode, pid_t candidate)
{
	if (!inode)
		return candidate;
	if (candidate > 0 && holds(candidate, inode))
		return candidate;
	pid_t pid = indexed_owner(inode);
	if (!pid && time(NULL) != sockets.built) {
		index_sockets();
		pid = indexed_owner(inode);
	}
	return pid;
}

/* The inode of the socket listening on PORT in the network namespace NETNS: a process in that
 * namespace has its listeners in /proc/PID/net/tcp and tcp6. A namespace's list is read at most
 * once a second. */
static uint64_t listener_inode(uint32_t netns, unsigned port)
{
	enum { LISTENERS = 1024 };
	static struct {
		uint32_t netns;
		time_t read;
		size_t count;
		struct {
			unsigned port;
			uint64_t inode;
		} of[LISTENERS];
	} seen;
	if (seen.netns != netns || seen.read != time(NULL)) {
		seen.netns = netns;
		seen.read = time(NULL);
		seen.count = 0;
		DIR *proc = opendir("/proc");
		struct dirent *p;
		while (proc && (p = readdir(proc))) {
			char path[300], line[512];
			struct stat st;
			if (!isdigit((unsigned char)p->d_name[0]))
				continue;
			snprintf(path, sizeof(path), "/proc/%s/ns/net", p->d_name);
			if (stat(path, &st) != 0 || st.st_ino != netns)
				continue;
			for (int v6 = 0; v6 < 2; v6++) {
				snprintf(path, sizeof(path), "/proc/%s/net/tcp%s", p->d_name, v6 ? "6" : "");
				FILE *f = fopen(path, "re");
				while (f && seen.count < LISTENERS && fgets(line, sizeof(line), f)) {
					unsigned local_port, state;
					unsigned long long inode;
					if (sscanf(line, " %*u: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x %*s %*s %*s %*s %*s %llu",
						   &local_port, &state, &inode) == 3 && state == 0x0A) {
						seen.of[seen.count].port = local_port;
						seen.of[seen.count++].inode = inode;
					}
				}
				if (f)
					fclose(f);
			}
			break; /* one process of the namespace shows all of it */
		}
		if (proc)
			closedir(proc);
	}
	for (size_t i = 0; i < seen.count; i++)
		if (seen.of[i].port == port)
			return seen.of[i].inode;
	return 0;
}

/* A process's name as the library's log and tcprare-doctor give it (diag/owners.c: its comm, or its
 * argv[0] where the kernel cut comm to 15 bytes); what the kernel saw if the process is gone. */
static void name_of(pid_t pid, const char *seen, char *out, size_t size)
{
	if (pid > 0)
		owner_prog(pid, out, size);
	if (pid <= 0 || !strcmp(out, "-"))
		snprintf(out, size, "%s", seen[0] ? seen : "-");
}

/* --- one line of output, text or JSON (keys as in libtcprare(7)) --- */

struct field {
	const char *key, *text;
	unsigned long long number;
};

static void put_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void put_time(FILE *out, bool date)
{
	struct timespec ts;
	struct tm tm;
	char text[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(text, sizeof(text), date ? "%Y-%m-%dT%H:%M:%S" : "%H:%M:%S", &tm);
	fprintf(out, "%s.%03ld%s", text, ts.tv_nsec / 1000000, date ? "Z" : "");
}

static void print_line(pid_t pid, const char *prog, const char *event, const char *action,
		       const struct field *fields, size_t n)
{
	if (opt.json) {
		fputs("{\"time\":\"", stdout);
		put_time(stdout, true);
		printf("\",\"pid\":%d,\"prog\":", (int)pid);
		put_json_string(stdout, prog);
		printf(",\"event\":\"%s\",\"action\":\"%s\"", event, action);
		for (size_t i = 0; i < n; i++) {
			printf(",\"%s\":", fields[i].key);
			if (fields[i].text)
				put_json_string(stdout, fields[i].text);
			else
				printf("%llu", fields[i].number);
		}
		fputs("}\n", stdout);
	} else {
		put_time(stdout, false);
		printf(" %s[%d]: %s %s", prog, (int)pid, event, action);
		for (size_t i = 0; i < n; i++) {
			if (fields[i].text)
				printf(" %s=%s", fields[i].key, fields[i].text);
			else
				printf(" %s=%llu", fields[i].key, fields[i].number);
		}
		fputc('\n', stdout);
	}
	fflush(stdout);
}

static void format_address(int family, const uint8_t *addr, unsigned port, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN];
	if (!inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, addr, host, sizeof(host))) {
		snprintf(out, size, "-");
		return;
	}
	snprintf(out, size, family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

/* --- accept-queue overflows: one line per listener and second, with the drops since the last --- */

#define MAX_LISTENERS 256
static struct listener {
	uint64_t sock, inode, drops_shown, drops_seen;
	struct timespec shown;
	bool pending; /* records came since the last line */
	struct watch_event last;
} listeners[MAX_LISTENERS];
static size_t nlisteners;

static double seconds_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void print_event(const struct watch_event *e, unsigned long long drops)
{
	char local[64], peer[64], prog[PROG_MAX + 1];
	pid_t pid;
	if (e->pid_holds)
		pid = (pid_t)e->pid;
	else if (e->kind == WATCH_LINGER_RESET && e->after_close)
		pid = owner_of(listener_inode(e->netns, e->local_port), 0); /* the socket has no process left */
	else
		pid = owner_of(e->inode, (pid_t)e->pid);
	name_of(pid, pid == (pid_t)e->pid ? e->comm : "", prog, sizeof(prog));
	format_address(e->family, e->local_addr, e->local_port, local, sizeof(local));
	if (e->kind == WATCH_ACCEPT_OVERFLOW)
		snprintf(peer, sizeof(peer), "-");
	else
		format_address(e->family, e->peer_addr, e->peer_port, peer, sizeof(peer));
	struct field f[8] = {{"local", local, 0}, {"peer", peer, 0}};
	size_t n = 2;
	switch (e->kind) {
	case WATCH_CLOSEWAIT_LOST:
		f[n++] = (struct field){"bytes", NULL, e->bytes};
		f[n++] = (struct field){"quiet_ms", NULL, e->quiet_ms};
		break;
	case WATCH_LINGER_RESET:
		f[n++] = (struct field){"unread", NULL, e->bytes};
		f[n++] = (struct field){"at", e->after_close ? "data_after_close" : "close", 0};
		break;
	case WATCH_ACCEPT_OVERFLOW:
		f[n++] = (struct field){"drops", NULL, drops};
		f[n++] = (struct field){"queue", NULL, e->queue};
		f[n++] = (struct field){"backlog", NULL, e->backlog};
		break;
	}
	f[n++] = (struct field){"netns", NULL, e->netns};
	print_line(pid, prog, event_words[e->kind][0], event_words[e->kind][1], f, n);
	counts[e->kind]++;
}

static void show_listener(struct listener *l)
{
	print_event(&l->last, l->drops_seen - l->drops_shown);
	l->drops_shown = l->drops_seen;
	l->pending = false;
	clock_gettime(CLOCK_MONOTONIC, &l->shown);
}

/* The first record of a listener is shown at once: its drops are all it had had since it started. */
static void note_overflow(const struct watch_event *e)
{
	struct listener *l = NULL;
	for (size_t i = 0; i < nlisteners && !l; i++)
		if (listeners[i].sock == e->sock && listeners[i].inode == e->inode)
			l = &listeners[i];
	if (!l) {
		l = &listeners[nlisteners < MAX_LISTENERS ? nlisteners++ : MAX_LISTENERS - 1];
		*l = (struct listener){.sock = e->sock, .inode = e->inode};
	}
	l->last = *e;
	if (e->drops > l->drops_seen)
		l->drops_seen = e->drops;
	l->pending = true;
	if (l->shown.tv_sec == 0 || seconds_since(&l->shown) >= 1.0)
		show_listener(l);
}

static void flush_listeners(bool all)
{
	for (size_t i = 0; i < nlisteners; i++)
		if (listeners[i].pending && listeners[i].drops_seen > listeners[i].drops_shown &&
		    (all || seconds_since(&listeners[i].shown) >= 1.0))
			show_listener(&listeners[i]);
}

static int on_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (stopping)
		return -1; /* stop at once, even with events still queued */
	const struct watch_event *e = data;
	if (size < sizeof(*e) || e->kind < WATCH_CLOSEWAIT_LOST || e->kind > WATCH_ACCEPT_OVERFLOW)
		return 0;
	if (e->kind == WATCH_ACCEPT_OVERFLOW)
		note_overflow(e);
	else
		print_event(e, 0);
	return 0;
}

/* The counts per event; events_dropped only if the kernel had to drop any. */
static void print_counts(unsigned long long dropped)
{
	struct field f[4] = {{"closewait_lost", NULL, counts[WATCH_CLOSEWAIT_LOST]},
			     {"linger_reset", NULL, counts[WATCH_LINGER_RESET]},
			     {"accept_queue_overflow", NULL, counts[WATCH_ACCEPT_OVERFLOW]},
			     {"events_dropped", NULL, dropped}};
	size_t n = dropped ? 4 : 3;
	if (opt.json) {
		fputs("{\"time\":\"", stdout);
		put_time(stdout, true);
		printf("\",\"pid\":%d,\"prog\":\"tcprare-watch\",\"event\":\"summary\"", (int)getpid());
		for (size_t i = 0; i < n; i++)
			printf(",\"%s\":%llu", f[i].key, f[i].number);
		fputs("}\n", stdout);
	} else {
		put_time(stdout, false);
		printf(" tcprare-watch[%d]: summary", (int)getpid());
		for (size_t i = 0; i < n; i++)
			printf(" %s=%llu", f[i].key, f[i].number);
		fputc('\n', stdout);
	}
	fflush(stdout);
}

/* --- loading: say what is missing, in words, instead of libbpf's guesses --- */

static char libbpf_said[4096];

static int on_libbpf(enum libbpf_print_level level, const char *format, va_list args)
{
	char line[1024];
	vsnprintf(line, sizeof(line), format, args);
	if (opt.verbose)
		fputs(line, stderr);
	/* Keep the last warnings for a failure we cannot name; never its advice on the memlock limit
	 * ("ulimit -l", RLIMIT_MEMLOCK): since Linux 5.11 that limit does not apply to BPF at all. */
	if (level <= LIBBPF_WARN && !strstr(line, "ulimit") && !strstr(line, "MEMLOCK")) {
		size_t have = strlen(libbpf_said);
		if (have + strlen(line) >= sizeof(libbpf_said))
			have = 0;
		snprintf(libbpf_said + have, sizeof(libbpf_said) - have, "%s", line);
	}
	return 0;
}

static bool has_capability(int cap)
{
	struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};
	if (syscall(SYS_capget, &header, data) != 0)
		return false;
	return data[cap / 32].effective & (1u << (cap % 32));
}

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

/* Why loading failed, as far as it can be told: exits 2 after one message naming what is missing. */
static void explain_failure(const char *step, int err)
{
	bool admin = has_capability(CAP_SYS_ADMIN);
	const char *missing = NULL;
	if (!admin && !has_capability(CAP_BPF) && !has_capability(CAP_PERFMON))
		missing = "CAP_BPF and CAP_PERFMON (run it as root)";
	else if (!admin && !has_capability(CAP_BPF))
		missing = "CAP_BPF";
	else if (!admin && !has_capability(CAP_PERFMON))
		missing = "CAP_PERFMON";
	bool named = true;
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
		fprintf(stderr, "tcprare-watch: the kernel has no BTF (/sys/kernel/btf/vmlinux is missing: "
				"CONFIG_DEBUG_INFO_BTF): cannot %s\n", step);
	else if (missing)
		fprintf(stderr, "tcprare-watch: cannot %s: needs %s\n", step, missing);
	else if (err == EPERM || err == EACCES)
		fprintf(stderr, "tcprare-watch: cannot %s: the kernel refused tracing programs (%s) although "
				"the capabilities are there: kernel lockdown, a security module, or a "
				"container's seccomp filter forbids bpf(2) tracing here\n", step, strerror(err));
	else if (err == ENOENT || err == EINVAL || err == ESRCH)
		fprintf(stderr, "tcprare-watch: cannot %s: this kernel lacks a tracepoint or type the "
				"watcher needs (tcp:tcp_receive_reset, tcp:tcp_send_reset, skb:kfree_skb) (%s)\n",
			step, strerror(err));
	else {
		fprintf(stderr, "tcprare-watch: cannot %s: %s\n", step, strerror(err));
		named = false;
	}
	if (!named && !opt.verbose && libbpf_said[0])
		fprintf(stderr, "tcprare-watch: libbpf said:\n%s", libbpf_said);
	exit(2);
}

/* How many arguments the running kernel's tracepoint NAME passes (after its context), from BTF:
 * tracepoints gain arguments between kernels (tcp_send_reset's reason in 6.10, kfree_skb's rx_sk in
 * 6.11), and a program reading one the kernel lacks would fail to load, taking the others with it.
 * -1 if the tracepoint is missing. */
static int tracepoint_arguments(const struct btf *btf, const char *name)
{
	char typedef_name[128];
	snprintf(typedef_name, sizeof(typedef_name), "btf_trace_%s", name);
	__s32 id = btf ? btf__find_by_name_kind(btf, typedef_name, BTF_KIND_TYPEDEF) : -1;
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, (__u32)id) : NULL;
	if (t && btf_is_typedef(t))
		t = btf__type_by_id(btf, t->type);
	if (t && btf_is_ptr(t))
		t = btf__type_by_id(btf, t->type);
	return t && btf_is_func_proto(t) ? btf_vlen(t) - 1 : -1;
}

/* Leaves out the programs whose tracepoint this kernel lacks or passes fewer arguments, and says
 * which events will not be reported; exits if none is left. */
static void fit_to_kernel(struct watch_bpf *skel)
{
	static const struct {
		const char *tracepoint, *events;
		int arguments;
	} needs[] = {
		{"tcp_receive_reset", "closewait lost events", 1},
		{"tcp_send_reset", "linger reset events (Linux 6.10 or later)", 3},
		{"kfree_skb", "accept_queue overflow events (Linux 6.11 or later)", 4},
	};
	struct bpf_program *programs[] = {skel->progs.on_receive_reset, skel->progs.on_send_reset,
					  skel->progs.on_kfree_skb};
	struct btf *btf = btf__load_vmlinux_btf();
	int left = 0;
	if (!btf)
		return; /* load says what is missing */
	for (size_t i = 0; i < sizeof(needs) / sizeof(needs[0]); i++) {
		if (tracepoint_arguments(btf, needs[i].tracepoint) >= needs[i].arguments) {
			left++;
			continue;
		}
		bpf_program__set_autoload(programs[i], false);
		fprintf(stderr, "tcprare-watch: this kernel's tracepoint %s lacks what is needed: %s are not reported\n",
			needs[i].tracepoint, needs[i].events);
	}
	btf__free(btf);
	if (!left) {
		fprintf(stderr, "tcprare-watch: nothing to watch on this kernel\n");
		exit(2);
	}
}

static uint32_t netns_inode(const char *name)
{
	struct stat st;
	char *end;
	errno = 0;
	unsigned long n = strtoul(name, &end, 10);
	if (*name && !*end && !errno && n > 0 && n <= UINT32_MAX)
		return (uint32_t)n;
	if (stat(name, &st) != 0) {
		fprintf(stderr, "tcprare-watch: --netns %s: %s: expected a namespace file (/proc/PID/ns/net, "
				"/run/netns/NAME) or its inode number\n", name, strerror(errno));
		exit(2);
	}
	return (uint32_t)st.st_ino;
}

static void parse(int argc, char **argv)
{
	static const struct option longs[] = {
		{"json", no_argument, 0, 'j'},	      {"duration", required_argument, 0, 'd'},
		{"netns", required_argument, 0, 'n'}, {"verbose", no_argument, 0, 'v'},
		{"help", no_argument, 0, 'h'},	      {"version", no_argument, 0, 'V'},
		{0, 0, 0, 0}};
	int c;
	char *end;
	while ((c = getopt_long(argc, argv, "jd:n:vh", longs, NULL)) != -1) {
		switch (c) {
		case 'j':
			opt.json = true;
			break;
		case 'd':
			errno = 0;
			opt.duration = strtod(optarg, &end);
			if (errno || end == optarg || *end || opt.duration <= 0 || opt.duration > 31536000) {
				fprintf(stderr, "tcprare-watch: --duration %s: expected seconds, more than 0\n", optarg);
				exit(2);
			}
			break;
		case 'n':
			opt.netns_name = optarg;
			opt.netns = netns_inode(optarg);
			break;
		case 'v':
			opt.verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("tcprare-watch %s\n", TCPRARE_VERSION);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	parse(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(on_libbpf);

	struct watch_bpf *skel = watch_bpf__open();
	if (!skel)
		explain_failure("open the BPF programs", errno);
	skel->rodata->netns_only = opt.netns;
	fit_to_kernel(skel);
	int err = watch_bpf__load(skel);
	if (err)
		explain_failure("load the BPF programs", -err);
	err = watch_bpf__attach(skel);
	if (err)
		explain_failure("attach to the tracepoints", -err);
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
	if (!rb)
		explain_failure("open the ring buffer", errno);

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	if (opt.netns_name)
		fprintf(stderr, "tcprare-watch: ready: watching network namespace %u (%s)\n", opt.netns, opt.netns_name);
	else
		fprintf(stderr, "tcprare-watch: ready: watching every network namespace\n");

	int rc = 0;
	while (!stopping) {
		int wait_ms = 200;
		if (opt.duration > 0) {
			double left = opt.duration - seconds_since(&start);
			if (left <= 0)
				break;
			if (left * 1000 < wait_ms)
				wait_ms = (int)(left * 1000) + 1;
		}
		err = ring_buffer__poll(rb, wait_ms);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "tcprare-watch: reading events: %s\n", strerror(-err));
			rc = 1;
			break;
		}
		flush_listeners(false);
	}
	ring_buffer__consume(rb);
	flush_listeners(true);
	print_counts(__atomic_load_n(&skel->bss->events_dropped, __ATOMIC_RELAXED));
	ring_buffer__free(rb);
	watch_bpf__destroy(skel);
	return rc;
}
