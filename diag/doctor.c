/* tcprare-doctor: a snapshot of the rare TCP states on this host, now, for every program (those that
 * LD_PRELOAD cannot reach too: Go, static binaries). It reads the kernel's socket table through
 * netlink sock_diag, as ss(8) does, which any user may; finds each socket's process in /proc where
 * permission allows; and says what each connection in CLOSE_WAIT and each listener means, and which
 * tcprare setting would help. No privileges needed, nothing changed.
 *
 * sockdiag.c reads the table, owners.c finds the processes, verdict.c judges, report.c prints. */
#include "owners.h"
#include "report.h"
#include "sockdiag.h"
#include "verdict.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exit statuses: documented in tcprare-doctor(1). */
enum { EXIT_NOTHING = 0, EXIT_FINDINGS = 1, EXIT_TROUBLE = 2 };

static const char usage[] =
	"Usage: tcprare-doctor [--json] [--port=N] [--pid=N]\n"
	"A snapshot of this network namespace's TCP sockets that lose data or connections: every\n"
	"connection in CLOSE_WAIT and every listener, with its process, what it means, and the tcprare\n"
	"setting that would help. Read through netlink sock_diag; no privileges needed (other users'\n"
	"processes are then hidden).\n"
	"\n"
	"  --json        one JSON object per line\n"
	"  --port=N      only sockets whose local or peer port is N\n"
	"  --pid=N       only sockets process N holds\n"
	"  --help        show this help\n"
	"  --version     show the version\n"
	"\n"
	"Exit status: 0 nothing found, 1 findings, 2 trouble (a bad option, an unreadable socket table).\n"
	"See tcprare-doctor(1).\n";

#define TRY_HELP "\nTry 'tcprare-doctor --help'."

__attribute__((format(printf, 1, 2))) static _Noreturn void die(const char *format, ...)
{
	va_list args;
	va_start(args, format);
	fputs("tcprare-doctor: ", stderr);
	vfprintf(stderr, format, args);
	fputc('\n', stderr);
	va_end(args);
	exit(EXIT_TROUBLE);
}

struct options {
	bool json;
	unsigned int port; /* 0: every port */
	pid_t pid;         /* 0: every process */
};

/* A whole decimal number from 1 to max, or the option is refused: never atoi's silent 0. */
static long number(const char *option, const char *value, long max)
{
	char *end;
	errno = 0;
	long n = value && *value ? strtol(value, &end, 10) : -1;
	if (!value || !*value || errno || *end || n < 1 || n > max)
		die("option '%s' needs a number from 1 to %ld, not '%s'" TRY_HELP, option, max, value ? value : "");
	return n;
}

/* Options as --name=VALUE or --name VALUE; flags take no value. */
static void parse_options(int argc, char **argv, struct options *o)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = strchr(arg, '=');
		size_t len = value ? (size_t)(value - arg) : strlen(arg);
		if (value)
			value++;
#define IS(word) (len == strlen(word) && !strncmp(arg, word, len))
		bool flag = IS("--json") || IS("--help") || IS("--version");
		if (flag && value)
			die("option '%s' takes no value" TRY_HELP, arg);
		if (IS("--help")) {
			fputs(usage, stdout);
			exit(EXIT_NOTHING);
		} else if (IS("--version")) {
			printf("tcprare-doctor %s\n", TCPRARE_VERSION);
			exit(EXIT_NOTHING);
		} else if (IS("--json")) {
			o->json = true;
		} else if (IS("--port") || IS("--pid")) {
			if (!value && i + 1 < argc)
				value = argv[++i];
			if (IS("--port"))
				o->port = (unsigned int)number("--port", value, 65535);
			else
				o->pid = (pid_t)number("--pid", value, 0x7fffffff);
		} else {
			die("unknown option '%s'" TRY_HELP, arg);
		}
#undef IS
	}
}

/* net.core.somaxconn of our network namespace (/proc/sys/net follows the reader's), or -1. */
static long read_somaxconn(void)
{
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "re");
	long value = -1;
	if (f) {
		if (fscanf(f, "%ld", &value) != 1)
			value = -1;
		fclose(f);
	}
	return value;
}

static unsigned int port_of(const struct sockaddr_in6 *a)
{
	return ntohs(a->sin6_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port : a->sin6_port);
}

static bool address_equal(const struct sockaddr_in6 *a, const struct sockaddr_in6 *b)
{
	if (a->sin6_family != b->sin6_family)
		return false;
	if (a->sin6_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr));
}

static bool address_any(const struct sockaddr_in6 *a)
{
	if (a->sin6_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr);
}

/* A connection whose local address one of the listeners serves was accepted, not connected. An IPv6
 * wildcard listener also accepts IPv4 connections, unless it is v6-only; close enough here. */
static bool was_accepted(const struct diag_socket *const *listeners, size_t nlisteners, const struct diag_socket *c)
{
	for (size_t i = 0; i < nlisteners; i++) {
		const struct diag_socket *l = listeners[i];
		if (port_of(&l->local) == port_of(&c->local) && (address_any(&l->local) || address_equal(&l->local, &c->local)))
			return true;
	}
	return false;
}

struct row {
	struct diag_socket socket;
	struct owner owner;
	bool accepted;
};

/* CLOSE_WAIT first, then listeners; each by local port, then peer port. */
static int by_kind_and_port(const void *a, const void *b)
{
	const struct diag_socket *x = &((const struct row *)a)->socket, *y = &((const struct row *)b)->socket;
	if (x->state != y->state)
		return x->state == TCP_CLOSE_WAIT ? -1 : 1;
	if (port_of(&x->local) != port_of(&y->local))
		return port_of(&x->local) < port_of(&y->local) ? -1 : 1;
	return port_of(&x->peer) < port_of(&y->peer) ? -1 : port_of(&x->peer) > port_of(&y->peer);
}

int main(int argc, char **argv)
{
	struct options options = {0};
	parse_options(argc, argv, &options);

	struct socket_table table = {0};
	if (sockdiag_read(&table, 1u << TCP_CLOSE_WAIT | 1u << TCP_LISTEN) != 0)
		die("cannot read the kernel's socket table through netlink sock_diag: %s", strerror(errno));
	long somaxconn = read_somaxconn();

	/* The rows that pass --port; whether each was accepted is judged against the whole table. */
	struct row *rows = calloc(table.count ? table.count : 1, sizeof(*rows));
	uint64_t *inodes = calloc(table.count ? table.count : 1, sizeof(*inodes));
	uint32_t *uids = calloc(table.count ? table.count : 1, sizeof(*uids));
	struct owner *owners = calloc(table.count ? table.count : 1, sizeof(*owners));
	const struct diag_socket **listeners = calloc(table.count ? table.count : 1, sizeof(*listeners));
	if (!rows || !inodes || !uids || !owners || !listeners)
		die("out of memory");
	size_t n = 0, nlisteners = 0;
	for (size_t i = 0; i < table.count; i++)
		if (table.sockets[i].state == TCP_LISTEN)
			listeners[nlisteners++] = &table.sockets[i];
	for (size_t i = 0; i < table.count; i++) {
		const struct diag_socket *s = &table.sockets[i];
		if (options.port && port_of(&s->local) != options.port &&
		    (s->state == TCP_LISTEN || port_of(&s->peer) != options.port))
			continue;
		rows[n] = (struct row){.socket = *s,
				       .accepted = s->state == TCP_CLOSE_WAIT && was_accepted(listeners, nlisteners, s)};
		inodes[n] = s->inode;
		uids[n] = s->uid;
		n++;
	}

	struct report_totals totals = {.somaxconn = somaxconn};
	if (owners_find(inodes, uids, owners, n, options.pid, &totals.lookup) != 0) {
		fprintf(stderr, "tcprare-doctor: cannot read /proc (%s): owners unknown\n", strerror(errno));
		for (size_t i = 0; i < n; i++)
			owners[i] = (struct owner){.status = OWNER_HIDDEN, .prog = "-"};
	} else if (options.pid && !totals.lookup.wanted_exists) {
		die("no process %d", (int)options.pid);
	} else if (options.pid && !totals.lookup.wanted_readable) {
		die("cannot read /proc/%d/fd: it belongs to another user; run as that user or root", (int)options.pid);
	}
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		if (!owners[i].held_by_wanted)
			continue;
		rows[i].owner = owners[i];
		rows[kept++] = rows[i];
	}
	qsort(rows, kept, sizeof(*rows), by_kind_and_port);

	report_begin(options.json);
	for (size_t i = 0; i < kept; i++) {
		const struct diag_socket *s = &rows[i].socket;
		struct verdict v;
		if (s->state == TCP_LISTEN) {
			verdict_listener(s, somaxconn, &v);
			totals.listeners++;
		} else {
			verdict_close_wait(s, rows[i].accepted, &v);
			totals.close_wait++;
		}
		totals.findings += v.finding;
		totals.hidden_owners += rows[i].owner.status == OWNER_HIDDEN;
		report_socket(s, &rows[i].owner, &v, somaxconn);
	}
	report_end(&totals);

	free(rows);
	free(inodes);
	free(uids);
	free(owners);
	free(listeners);
	socket_table_free(&table);
	if (fflush(stdout) != 0 || ferror(stdout))
		die("cannot write the report: %s", strerror(errno));
	return totals.findings ? EXIT_FINDINGS : EXIT_NOTHING;
}
