/* libFuzzer harness for the settings parser (shim/config.c): `make fuzz` (FUZZ_SECONDS=60; needs
 * clang). A failing input is left in build-fuzz/crash-*; replay it: build-fuzz/config_fuzz FILE.
 *
 * Each input is a list of lines. A line "TCPRARE_NAME=VALUE" naming one of the variables config.c
 * reads sets that variable (readable seeds: tests/fuzz/corpus/); any other line picks the variable by
 * its first byte (modulo their number) and takes the rest of the line as the value, up to a NUL. The
 * variables are set (putenv; a later line for the same variable wins), config_load() runs, and
 * the resulting struct config is checked against
 *   - invariants: ranges of every number, enums in range, port ranges lo <= hi within 1..65535 and at
 *     most MAX_PORT_RANGES, log_path NUL-terminated and shorter than PATH_MAX, the file path only
 *     with LOG_FILE and the fixed backlog only with BACKLOG_FIXED;
 *   - an independent reference model of README.md's "Settings" table: every field equals what the
 *     table says the environment means (a bad value keeps the default);
 *   - the contract on bad values: exactly one line on stderr per rejected variable, naming it
 *     ("tcprare: TCPRARE_X=... is not valid: expected ...; using ..."), nothing for good values;
 *     a rejected variable is gone from the environment afterwards, a good one is still there;
 *   - config_port_listed() answers as the ranges say, at and around each range's ends;
 *   - a second config_load(), in the environment the first one left, says nothing and gives the
 *     same struct (as in a program the first one starts).
 * Then every variable is unset. Linked with config.c, log.c, fdstate.c, ownfd.c and real.c only:
 * not the hooks, which would interpose libFuzzer's own close/write, nor init.c's constructor. */
#include "../../shim/config.h"

#include <sanitizer/common_interface_defs.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

enum kind { K_MODE, K_NUMBER, K_SCOPE, K_BACKLOG, K_PORTS, K_LOG, K_FORMAT, K_SWITCH };

static const struct var {
	const char *name;
	enum kind kind;
	unsigned long min, max; /* K_NUMBER */
} vars[] = {
	{"TCPRARE_CLOSEWAIT", K_MODE, 0, 0},
	{"TCPRARE_CLOSEWAIT_IDLE_MS", K_NUMBER, 0, 86400000},
	{"TCPRARE_CLOSEWAIT_SCOPE", K_SCOPE, 0, 0},
	{"TCPRARE_LINGER", K_MODE, 0, 0},
	{"TCPRARE_LINGER_MS", K_NUMBER, 1, 600000},
	{"TCPRARE_LINGER_IDLE_MS", K_NUMBER, 1, 600000},
	{"TCPRARE_LINGER_MAX", K_NUMBER, 1, 16384},
	{"TCPRARE_BACKLOG", K_BACKLOG, 0, 0},
	{"TCPRARE_PORTS", K_PORTS, 0, 0},
	{"TCPRARE_LOG", K_LOG, 0, 0},
	{"TCPRARE_LOG_FORMAT", K_FORMAT, 0, 0},
	{"TCPRARE_SUMMARY", K_SWITCH, 0, 0},
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

static int report_fd = -1;  /* the real stderr, for libFuzzer's and the sanitizers' reports */
static int capture_fd = -1; /* a memfd put on fd 2 while config_load() runs */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	for (size_t i = 0; i < NVARS; i++)
		unsetenv(vars[i].name);
	report_fd = dup(STDERR_FILENO);
	capture_fd = memfd_create("config_fuzz_stderr", MFD_CLOEXEC);
	if (report_fd < 0 || capture_fd < 0) {
		perror("config_fuzz: dup/memfd_create");
		abort();
	}
	__sanitizer_set_report_fd((void *)(intptr_t)report_fd);
	return 0;
}

#define FAIL(...)                                                                                       \
	do {                                                                                            \
		dprintf(report_fd, "config_fuzz: invariant violated at line %d: ", __LINE__);          \
		dprintf(report_fd, __VA_ARGS__);                                                        \
		dprintf(report_fd, "\n");                                                               \
		dump_env();                                                                             \
		abort();                                                                                \
	} while (0)

/* The values as set, for the report: printable, with other bytes as \xNN. */
static const char *values[NVARS];

static void dump_env(void)
{
	dprintf(report_fd, "config_fuzz: the environment was:\n");
	for (size_t i = 0; i < NVARS; i++) {
		if (!values[i])
			continue;
		dprintf(report_fd, "  %s='", vars[i].name);
		for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++) {
			if (*p >= 0x20 && *p < 0x7f && *p != '\\' && *p != '\'')
				dprintf(report_fd, "%c", *p);
			else
				dprintf(report_fd, "\\x%02x", *p);
		}
		dprintf(report_fd, "' (%zu bytes)\n", strlen(values[i]));
	}
}

/* --- the reference model: README.md's table, written independently of config.c --- */

/* All digits, at least one; the value if it is within [min, max]. */
static int ref_number(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	size_t len = strlen(s);
	if (len == 0 || strspn(s, "0123456789") != len)
		return 0;
	while (*s == '0' && s[1])
		s++; /* leading zeros do not make a number big */
	if (strlen(s) > 10)
		return 0;
	unsigned long long n = strtoull(s, NULL, 10);
	if (n < min || n > max)
		return 0;
	*out = (unsigned long)n;
	return 1;
}

static int ref_word(const char *s, const char *const *words)
{
	for (int i = 0; words[i]; i++)
		if (!strcasecmp(s, words[i]))
			return i;
	return -1;
}

struct ref_ports {
	unsigned int n;
	uint16_t lo[MAX_PORT_RANGES], hi[MAX_PORT_RANGES];
};

/* "80,8000-8100": 1..MAX_PORT_RANGES comma-separated items, each PORT or LO-HI with 1 <= LO <= HI
 * <= 65535; no empty item, no trailing comma. (config.c also refuses an item of 16 or more
 * characters, which only leading zeros can make: the model follows it rather than report that.) */
static int ref_ports(const char *s, struct ref_ports *r)
{
	r->n = 0;
	for (;;) {
		const char *end = s + strcspn(s, ",");
		size_t len = (size_t)(end - s);
		char item[64];
		unsigned long lo, hi;
		if (len == 0 || len >= 16 || r->n == MAX_PORT_RANGES)
			return 0;
		memcpy(item, s, len);
		item[len] = '\0';
		char *dash = strchr(item, '-');
		if (dash)
			*dash = '\0';
		if (!ref_number(item, 1, 65535, &lo) || !ref_number(dash ? dash + 1 : item, 1, 65535, &hi) || hi < lo)
			return 0;
		r->lo[r->n] = (uint16_t)lo;
		r->hi[r->n] = (uint16_t)hi;
		r->n++;
		if (!*end)
			return 1;
		s = end + 1;
	}
}

/* What config should be, and how many variables should be reported as bad. */
static unsigned int expect(struct config *want)
{
	static const char *const mode[] = {"off", "observe", "on", NULL}; /* enum mode's order */
	static const char *const scope[] = {"connected", "all", NULL};
	static const char *const backlog[] = {"off", "observe", "max", NULL}; /* enum backlog_policy's */
	static const char *const log[] = {"", "stderr", "syslog", "off", NULL}; /* enum log_dest's */
	static const char *const format[] = {"text", "json", NULL};
	static const char *const onoff[] = {"off", "on", NULL};
	unsigned int bad = 0;

	memset(want, 0, sizeof(*want));
	want->closewait = MODE_ON;
	want->closewait_idle_ms = 1000;
	want->linger = MODE_ON;
	want->linger_ms = 30000;
	want->linger_idle_ms = 5000;
	want->backlog = BACKLOG_MAX;
	want->log = LOG_AUTO;
	want->log_format = LOG_TEXT;

	for (size_t i = 0; i < NVARS; i++) {
		const char *v = values[i];
		unsigned long n;
		struct ref_ports p;
		int w;
		if (!v || !*v)
			continue; /* unset, or set but empty: the default */
		switch (vars[i].kind) {
		case K_MODE:
			if ((w = ref_word(v, mode)) < 0)
				bad++;
			else if (i == 0)
				want->closewait = (enum mode)w;
			else
				want->linger = (enum mode)w;
			break;
		case K_NUMBER:
			if (!ref_number(v, vars[i].min, vars[i].max, &n))
				bad++;
			else if (i == 1)
				want->closewait_idle_ms = (uint32_t)n;
			else if (i == 4)
				want->linger_ms = (uint32_t)n;
			else if (i == 5)
				want->linger_idle_ms = (uint32_t)n;
			else
				want->linger_max = (uint32_t)n;
			break;
		case K_SCOPE:
			if ((w = ref_word(v, scope)) < 0)
				bad++;
			else
				want->closewait_scope_all = w == 1;
			break;
		case K_BACKLOG:
			if ((w = ref_word(v, backlog)) >= 0)
				want->backlog = (enum backlog_policy)w;
			else if (ref_number(v, 1, 65535, &n)) {
				want->backlog = BACKLOG_FIXED;
				want->backlog_fixed = (int)n;
			} else
				bad++;
			break;
		case K_PORTS:
			if (!ref_ports(v, &p)) {
				bad++;
				break;
			}
			want->port_ranges = p.n;
			for (unsigned int k = 0; k < p.n; k++) {
				want->ports[k].lo = p.lo[k];
				want->ports[k].hi = p.hi[k];
			}
			break;
		case K_LOG:
			if ((w = ref_word(v, log)) > 0)
				want->log = (enum log_dest)w;
			else if (strchr(v, '/') && strlen(v) < PATH_MAX) {
				want->log = LOG_FILE;
				strcpy(want->log_path, v);
			} else
				bad++;
			break;
		case K_FORMAT:
			if ((w = ref_word(v, format)) < 0)
				bad++;
			else
				want->log_format = (enum log_format)w;
			break;
		case K_SWITCH:
			if ((w = ref_word(v, onoff)) < 0)
				bad++;
			else
				want->summary = w == 1;
			break;
		}
	}
	return bad;
}

/* --- the checks --- */

static void check_invariants(const struct config *c)
{
	if (c->closewait != MODE_OFF && c->closewait != MODE_OBSERVE && c->closewait != MODE_ON)
		FAIL("closewait=%d", (int)c->closewait);
	if (c->linger != MODE_OFF && c->linger != MODE_OBSERVE && c->linger != MODE_ON)
		FAIL("linger=%d", (int)c->linger);
	if (c->closewait_idle_ms > 86400000)
		FAIL("closewait_idle_ms=%u", c->closewait_idle_ms);
	if (c->linger_ms < 1 || c->linger_ms > 600000)
		FAIL("linger_ms=%u", c->linger_ms);
	if (c->linger_idle_ms < 1 || c->linger_idle_ms > 600000)
		FAIL("linger_idle_ms=%u", c->linger_idle_ms);
	if (c->linger_max > LINGER_MAX_LIMIT) /* 0: the default */
		FAIL("linger_max=%u", c->linger_max);
	if ((unsigned int)c->backlog > BACKLOG_FIXED)
		FAIL("backlog=%d", (int)c->backlog);
	if (c->backlog == BACKLOG_FIXED && (c->backlog_fixed < 1 || c->backlog_fixed > 65535))
		FAIL("backlog_fixed=%d with BACKLOG_FIXED", c->backlog_fixed);
	if (c->backlog != BACKLOG_FIXED && c->backlog_fixed != 0)
		FAIL("backlog_fixed=%d without BACKLOG_FIXED", c->backlog_fixed);
	if (c->port_ranges > MAX_PORT_RANGES)
		FAIL("port_ranges=%u", c->port_ranges);
	for (unsigned int i = 0; i < c->port_ranges; i++)
		if (c->ports[i].lo < 1 || c->ports[i].lo > c->ports[i].hi)
			FAIL("ports[%u]=%u-%u", i, c->ports[i].lo, c->ports[i].hi);
	if ((unsigned int)c->log > LOG_FILE)
		FAIL("log=%d", (int)c->log);
	size_t path_len = strnlen(c->log_path, sizeof(c->log_path));
	if (path_len >= sizeof(c->log_path))
		FAIL("log_path not NUL-terminated");
	if ((c->log == LOG_FILE) != (path_len > 0))
		FAIL("log=%d with a log_path of %zu bytes", (int)c->log, path_len);
	if (c->log == LOG_FILE && !strchr(c->log_path, '/'))
		FAIL("log_path '%s' has no '/'", c->log_path);
	if ((unsigned int)c->log_format > LOG_JSON)
		FAIL("log_format=%d", (int)c->log_format);
	/* bool fields: UBSan (-fsanitize=bool) reports a load of anything but 0 or 1. */
	if (c->closewait_scope_all != false && c->closewait_scope_all != true)
		FAIL("closewait_scope_all");
	if (c->summary != false && c->summary != true)
		FAIL("summary");
}

static void check_model(const struct config *c, const struct config *want)
{
#define SAME(field, fmt)                                                                                \
	if (c->field != want->field)                                                                   \
	FAIL(#field " is " fmt ", README.md's table says " fmt, c->field, want->field)
	SAME(closewait, "%d");
	SAME(closewait_idle_ms, "%u");
	SAME(closewait_scope_all, "%d");
	SAME(linger, "%d");
	SAME(linger_ms, "%u");
	SAME(linger_idle_ms, "%u");
	SAME(linger_max, "%u");
	SAME(backlog, "%d");
	SAME(backlog_fixed, "%d");
	SAME(port_ranges, "%u");
	SAME(log, "%d");
	SAME(log_format, "%d");
	SAME(summary, "%d");
#undef SAME
	for (unsigned int i = 0; i < c->port_ranges; i++)
		if (c->ports[i].lo != want->ports[i].lo || c->ports[i].hi != want->ports[i].hi)
			FAIL("ports[%u] is %u-%u, expected %u-%u", i, c->ports[i].lo, c->ports[i].hi,
			     want->ports[i].lo, want->ports[i].hi);
	if (strcmp(c->log_path, want->log_path))
		FAIL("log_path is '%.100s', expected '%.100s'", c->log_path, want->log_path);
}

/* config_port_listed() agrees with the ranges the model parsed, at and around their ends. */
static int ref_listed(const struct config *want, unsigned int port)
{
	if (want->port_ranges == 0)
		return 1;
	for (unsigned int i = 0; i < want->port_ranges; i++)
		if (port >= want->ports[i].lo && port <= want->ports[i].hi)
			return 1;
	return 0;
}

static void check_listed(const struct config *want)
{
	unsigned int probes[4 * MAX_PORT_RANGES + 5] = {0, 1, 80, 65535, 65536}, n = 5;
	for (unsigned int i = 0; i < want->port_ranges; i++) {
		probes[n++] = want->ports[i].lo - 1u;
		probes[n++] = want->ports[i].lo;
		probes[n++] = want->ports[i].hi;
		probes[n++] = want->ports[i].hi + 1u;
	}
	for (unsigned int i = 0; i < n; i++)
		if (config_port_listed(probes[i]) != ref_listed(want, probes[i]))
			FAIL("config_port_listed(%u) is %d", probes[i], (int)config_port_listed(probes[i]));
}

/* The problem lines config_load() wrote to fd 2: one per rejected variable, each naming one. */
static void check_problems(unsigned int bad)
{
	static char text[1 << 16];
	off_t size = lseek(capture_fd, 0, SEEK_END);
	if (size < 0 || (size_t)size >= sizeof(text))
		FAIL("%lld bytes on stderr", (long long)size);
	if (pread(capture_fd, text, (size_t)size, 0) != size)
		FAIL("cannot read the captured stderr");
	text[size] = '\0';
	if (size > 0 && text[size - 1] != '\n')
		FAIL("stderr does not end in a newline: '%s'", text);
	unsigned int lines = 0;
	unsigned int seen[NVARS] = {0};
	for (char *line = text, *nl; *line; line = nl + 1, lines++) {
		nl = strchr(line, '\n');
		*nl = '\0';
		if (strlen(line) > 1023)
			FAIL("a problem line of %zu bytes", strlen(line));
		if (strncmp(line, "tcprare: TCPRARE_", 17) || !strstr(line, " is not valid: expected ") ||
		    !strstr(line, "; using "))
			FAIL("unexpected line on stderr: '%s'", line);
		size_t name_len = strcspn(line + 9, "=");
		size_t k;
		for (k = 0; k < NVARS; k++)
			if (strlen(vars[k].name) == name_len && !strncmp(line + 9, vars[k].name, name_len))
				break;
		if (k == NVARS)
			FAIL("a problem line naming no variable: '%s'", line);
		if (!values[k] || !*values[k])
			FAIL("a problem line for %s, which is unset or empty: '%s'", vars[k].name, line);
		if (seen[k]++)
			FAIL("two problem lines for %s", vars[k].name);
		if (getenv(vars[k].name))
			FAIL("%s is still in the environment after its problem line", vars[k].name);
		for (const char *p = line; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				FAIL("a control byte 0x%02x in a problem line", (unsigned char)*p);
	}
	if (lines != bad)
		FAIL("%u problem lines on stderr, the model rejects %u variables:\n%s", lines, bad, text);
	for (size_t k = 0; k < NVARS; k++)
		if (values[k] && *values[k] && !seen[k] && !getenv(vars[k].name))
			FAIL("%s was taken out of the environment without a problem line", vars[k].name);
}

/* config_load() with fd 2 on the memfd, then the real stderr back. */
static void load_captured(void)
{
	if (ftruncate(capture_fd, 0) != 0 || lseek(capture_fd, 0, SEEK_SET) != 0 ||
	    dup2(capture_fd, STDERR_FILENO) < 0)
		FAIL("cannot capture stderr");
	config_load();
	if (dup2(report_fd, STDERR_FILENO) < 0)
		abort();
}

static const struct var *named(const uint8_t *line, size_t len, size_t *name_len, size_t *index)
{
	for (size_t i = 0; i < NVARS; i++) {
		size_t n = strlen(vars[i].name);
		if (len > n && line[n] == '=' && !memcmp(line, vars[i].name, n)) {
			*name_len = n + 1;
			*index = i;
			return &vars[i];
		}
	}
	return NULL;
}

#define INPUT_LIMIT (1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[INPUT_LIMIT];
	static char env_strings[NVARS][64 + INPUT_LIMIT];
	if (size >= sizeof(buf))
		return -1;
	memset(values, 0, sizeof(values));
	memcpy(buf, data, size);
	buf[size] = '\0';

	/* Split into lines; set each variable (the last line for a variable wins, as with setenv). */
	for (size_t at = 0; at < size;) {
		const uint8_t *nl = memchr(data + at, '\n', size - at);
		size_t end = nl ? (size_t)(nl - data) : size;
		char *line = buf + at;
		size_t len = end - at, skip, index;
		buf[end] = '\0';
		at = end + 1;
		if (len == 0)
			continue;
		if (!named((const uint8_t *)line, len, &skip, &index)) {
			index = (unsigned char)line[0] % NVARS;
			skip = 1;
		}
		values[index] = line + skip; /* up to the line's end or its first NUL */
		/* putenv of our own "NAME=VALUE", not setenv: glibc's setenv keeps a copy of every value it
		 * was ever given (for programs still holding getenv's pointers), and millions of inputs
		 * would run into -rss_limit_mb. */
		size_t name_len = strlen(vars[index].name);
		memcpy(env_strings[index], vars[index].name, name_len);
		env_strings[index][name_len] = '=';
		strcpy(env_strings[index] + name_len + 1, values[index]);
		if (putenv(env_strings[index]) != 0)
			FAIL("putenv");
	}

	struct config want;
	unsigned int bad = expect(&want);

	load_captured();
	check_invariants(&config);
	check_model(&config, &want);
	check_listed(&want);
	check_problems(bad);
	struct config first = config;
	for (size_t k = 0; k < NVARS; k++) /* what a program the first one started would find */
		if (values[k] && !getenv(vars[k].name))
			values[k] = NULL;
	load_captured();
	check_problems(0);
	if (memcmp(&first, &config, sizeof(config)))
		FAIL("a second config_load(), in the environment the first left, gave a different config");

	for (size_t i = 0; i < NVARS; i++)
		unsetenv(vars[i].name);
	return 0;
}
