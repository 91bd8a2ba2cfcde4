#include "report.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool json;
static char snapshot_time[32]; /* RFC 3339, UTC, milliseconds: the library log's "time" */

void report_begin(bool as_json)
{
	struct timespec now;
	struct tm utc;
	json = as_json;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &utc);
	size_t n = strftime(snapshot_time, sizeof(snapshot_time), "%Y-%m-%dT%H:%M:%S", &utc);
	snprintf(snapshot_time + n, sizeof(snapshot_time) - n, ".%03ldZ", now.tv_nsec / 1000000);
}

/* "127.0.0.1:80", "[::1]:80", as the library's log writes addresses. */
static void format_address(const struct sockaddr_in6 *address, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (address->sin6_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
		inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
		snprintf(out, size, "%s:%u", host, ntohs(v4->sin_port));
	} else {
		inet_ntop(AF_INET6, &address->sin6_addr, host, sizeof(host));
		snprintf(out, size, "[%s]:%u", host, ntohs(address->sin6_port));
	}
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* One key and value, in either format; a JSON line's first key has no comma before it. */
static void key_text(const char *key, const char *value)
{
	if (json) {
		printf(",\"%s\":", key);
		if (value)
			json_string(value);
		else
			fputs("null", stdout);
	} else
		printf(" %s=%s", key, value ? value : "-");
}

static void key_number(const char *key, bool known, long long value)
{
	if (json && known)
		printf(",\"%s\":%lld", key, value);
	else if (json)
		printf(",\"%s\":null", key);
	else if (known)
		printf(" %s=%lld", key, value);
	else
		printf(" %s=-", key);
}

static void key_bool(const char *key, bool value)
{
	if (json)
		printf(",\"%s\":%s", key, value ? "true" : "false");
	else
		printf(" %s=%s", key, value ? "yes" : "no");
}

static const char *const owner_words[] = {[OWNER_FOUND] = "found", [OWNER_HIDDEN] = "hidden", [OWNER_NONE] = "none"};

void report_socket(const struct diag_socket *s, const struct owner *o, const struct verdict *v, long somaxconn)
{
	char local[64], peer[64];
	bool listener = s->state == TCP_LISTEN, found = o->status == OWNER_FOUND;
	format_address(&s->local, local, sizeof(local));
	format_address(&s->peer, peer, sizeof(peer));

	if (json) {
		printf("{\"time\":\"%s\"", snapshot_time);
		key_number("pid", found, o->pid);
		key_text("prog", found ? o->prog : NULL);
		key_text("kind", listener ? "listener" : "close_wait");
	} else {
		fputs(listener ? "listener" : "close_wait", stdout);
		key_number("pid", found, o->pid);
		key_text("prog", found ? o->prog : NULL);
	}
	if (!found)
		key_text("owner", owner_words[o->status]);
	if (o->holders > 1)
		key_number("holders", true, o->holders);
	key_text("local", local);
	if (listener) {
		key_number("backlog", true, s->wqueue);
		key_number("queue", true, s->rqueue);
		key_number("drops", s->has_drops, s->drops);
		key_number("somaxconn", somaxconn >= 0, somaxconn);
	} else {
		key_text("peer", peer);
		key_number("unsent", true, s->wqueue);
		key_number("unread", true, closewait_unread(s));
		key_bool("eof_read", closewait_eof_read(s));
		key_number("last_recv_ms", s->has_last_recv, s->last_recv_ms);
	}
	key_number("uid", true, s->uid);
	if (json) {
		key_bool("finding", v->finding);
		key_text("verdict", v->text);
		key_text("setting", v->setting);
		puts("}");
	} else
		printf("\n    %s: %s\n", v->finding ? "finding" : "ok", v->text);
}

void report_end(const struct report_totals *t)
{
	if (json) {
		printf("{\"time\":\"%s\",\"kind\":\"summary\"", snapshot_time);
		key_number("close_wait", true, t->close_wait);
		key_number("listeners", true, t->listeners);
		key_number("findings", true, t->findings);
		key_number("somaxconn", t->somaxconn >= 0, t->somaxconn);
		key_number("hidden_owners", true, t->hidden_owners);
		key_number("hidden_processes", true, t->lookup.hidden);
		puts("}");
		return;
	}
	char somaxconn[24] = "unknown";
	if (t->somaxconn >= 0)
		snprintf(somaxconn, sizeof(somaxconn), "%ld", t->somaxconn);
	if (t->findings)
		printf("tcprare-doctor: %u finding%s", t->findings, t->findings == 1 ? "" : "s");
	else
		printf("tcprare-doctor: nothing found");
	printf(" among %u connection%s in CLOSE_WAIT and %u listener%s (net.core.somaxconn=%s)\n", t->close_wait,
	       t->close_wait == 1 ? "" : "s", t->listeners, t->listeners == 1 ? "" : "s", somaxconn);
	if (t->hidden_owners)
		printf("tcprare-doctor: the owner of %u socket%s is hidden (pid=- owner=hidden): /proc shows a "
		       "process's descriptors only to its own user and root (%u of %u processes hidden from "
		       "uid %u); run as root to see them\n",
		       t->hidden_owners, t->hidden_owners == 1 ? "" : "s", t->lookup.hidden, t->lookup.processes,
		       (unsigned int)geteuid());
}
