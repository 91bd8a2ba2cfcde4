#include "config.h"
#include "fdstate.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>

#define LINGER_MS_DEFAULT 30000     /* nginx's lingering_time and Apache's total: 30 s */
#define LINGER_IDLE_MS_DEFAULT 5000 /* nginx's lingering_timeout (Apache waits 2 s per read) */
#define TEXT(x) #x
#define NUMBER_TEXT(x) TEXT(x)

struct config config;

static const struct config defaults = {
	.closewait = MODE_ON,
	.closewait_idle_ms = CLOSEWAIT_IDLE_MS_DEFAULT,
	.linger = MODE_ON,
	.linger_ms = LINGER_MS_DEFAULT,
	.linger_idle_ms = LINGER_IDLE_MS_DEFAULT,
	.backlog = BACKLOG_MAX,
	.log = LOG_AUTO,
	.log_format = LOG_TEXT,
};

/* "tcprare: TCPRARE_X=value is not valid: expected ...; using ..." with the value made printable. */
static void reject(const char *name, const char *value, const char *expected, const char *fallback)
{
	char shown[65];
	size_t i;
	for (i = 0; value[i] && i < sizeof(shown) - 1; i++)
		shown[i] = (value[i] < 0x20 || value[i] == 0x7f) ? '?' : value[i];
	shown[i] = '\0';
	log_problem((const char *[]){"tcprare: ", name, "=", shown, value[i] ? "..." : "",
				     " is not valid: expected ", expected, "; using ", fallback, NULL});
	/* Said once: the programs this one starts would each say it again (a script may start dozens),
	 * and without it they keep the same default. */
	unsetenv(name);
}

/* A whole decimal number in [min, max]: no sign, no spaces, no suffix (atoi would take "5s" as 5). */
static bool parse_number(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	unsigned long n = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > (max - (unsigned long)(*s - '0')) / 10)
			return false;
		n = n * 10 + (unsigned long)(*s - '0');
	}
	if (n < min)
		return false;
	*out = n;
	return true;
}

static const char *setting(const char *name)
{
	const char *value = getenv(name);
	return value && *value ? value : NULL; /* set but empty counts as unset */
}

struct word {
	const char *text;
	int value;
};

static const struct word mode_words[] = {{"on", MODE_ON}, {"observe", MODE_OBSERVE}, {"off", MODE_OFF}, {0}};
static const struct word scope_words[] = {{"connected", false}, {"all", true}, {0}};
static const struct word backlog_words[] = {
	{"max", BACKLOG_MAX}, {"observe", BACKLOG_OBSERVE}, {"off", BACKLOG_OFF}, {0}};
static const struct word log_words[] = {{"stderr", LOG_STDERR}, {"syslog", LOG_SYSLOG}, {"off", LOG_OFF}, {0}};
static const struct word format_words[] = {{"text", LOG_TEXT}, {"json", LOG_JSON}, {0}};
static const struct word switch_words[] = {{"on", true}, {"off", false}, {0}};

/* Case-insensitive: "ON" and "On" mean "on". */
static bool match_word(const char *v, const struct word *words, int *value)
{
	for (; words->text; words++) {
		if (!strcasecmp(v, words->text)) {
			*value = words->value;
			return true;
		}
	}
	return false;
}

/* The value of a setting that is one of words: current if unset, current and a report if bad. */
static int load_word(const char *name, const struct word *words, int current, const char *expected,
		     const char *fallback)
{
	const char *v = setting(name);
	int value;
	if (!v)
		return current;
	if (match_word(v, words, &value))
		return value;
	reject(name, v, expected, fallback);
	return current;
}

static void load_number(const char *name, uint32_t *number, unsigned long min, unsigned long max,
			const char *expected, const char *fallback)
{
	const char *v = setting(name);
	unsigned long n;
	if (!v)
		return;
	if (parse_number(v, min, max, &n))
		*number = (uint32_t)n;
	else
		reject(name, v, expected, fallback);
}

static void load_backlog(void)
{
	const char *v = setting("TCPRARE_BACKLOG");
	unsigned long n;
	int policy;
	if (!v)
		return;
	if (match_word(v, backlog_words, &policy))
		config.backlog = policy;
	else if (parse_number(v, 1, 65535, &n)) {
		config.backlog = BACKLOG_FIXED;
		config.backlog_fixed = (int)n;
	} else
		reject("TCPRARE_BACKLOG", v, "max, observe, off or a backlog from 1 to 65535", "max");
}

/* "80,8000-8100": up to MAX_PORT_RANGES ports or ranges, each from 1 to 65535. */
static bool parse_ports(const char *list)
{
	char item[16];
	unsigned int n = 0;
	while (*list) {
		size_t len = strcspn(list, ",");
		if (len == 0 || len >= sizeof(item) || n == MAX_PORT_RANGES)
			return false;
		memcpy(item, list, len);
		item[len] = '\0';
		list += len + (list[len] == ',');
		if (!*list && list[-1] == ',')
			return false; /* a trailing comma */
		char *dash = strchr(item, '-');
		unsigned long lo, hi;
		if (dash)
			*dash = '\0';
		if (!parse_number(item, 1, 65535, &lo) || !parse_number(dash ? dash + 1 : item, lo, 65535, &hi))
			return false;
		config.ports[n].lo = (uint16_t)lo;
		config.ports[n].hi = (uint16_t)hi;
		n++;
	}
	config.port_ranges = n;
	return true;
}

static void load_ports(void)
{
	const char *v = setting("TCPRARE_PORTS");
	if (v && !parse_ports(v)) {
		/* Not even the items before the bad one: the same struct as with the variable unset. */
		memcpy(config.ports, defaults.ports, sizeof(config.ports));
		config.port_ranges = defaults.port_ranges;
		reject("TCPRARE_PORTS", v, "ports or ranges such as 80,8000-8100 (1 to 65535, at most 32 items)",
		       "every port");
	}
}

static void load_log(void)
{
	const char *v = setting("TCPRARE_LOG");
	int dest;
	if (v) {
		if (match_word(v, log_words, &dest))
			config.log = dest;
		else if (strchr(v, '/') && strlen(v) < sizeof(config.log_path)) {
			config.log = LOG_FILE;
			strcpy(config.log_path, v);
		} else
			reject("TCPRARE_LOG", v, "stderr, syslog, off or a file path containing '/' (%p: the pid)",
			       "stderr");
	}
	config.log_format = load_word("TCPRARE_LOG_FORMAT", format_words, config.log_format, "text or json", "text");
}

void config_load(void)
{
	config = defaults;
	if (getauxval(AT_SECURE))
		return; /* setuid and the like: the environment is not the program's owner's to trust */
	config.closewait = load_word("TCPRARE_CLOSEWAIT", mode_words, config.closewait, "on, observe or off", "on");
	load_number("TCPRARE_CLOSEWAIT_IDLE_MS", &config.closewait_idle_ms, 0, 86400000,
		"milliseconds from 0 to 86400000", NUMBER_TEXT(CLOSEWAIT_IDLE_MS_DEFAULT));
	config.closewait_scope_all = load_word("TCPRARE_CLOSEWAIT_SCOPE", scope_words, config.closewait_scope_all,
					       "connected or all", "connected");
	config.linger = load_word("TCPRARE_LINGER", mode_words, config.linger, "on, observe or off", "on");
	load_number("TCPRARE_LINGER_MS", &config.linger_ms, 1, 600000, "milliseconds from 1 to 600000",
		NUMBER_TEXT(LINGER_MS_DEFAULT));
	load_number("TCPRARE_LINGER_IDLE_MS", &config.linger_idle_ms, 1, 600000, "milliseconds from 1 to 600000",
		NUMBER_TEXT(LINGER_IDLE_MS_DEFAULT));
	load_number("TCPRARE_LINGER_MAX", &config.linger_max, 1, LINGER_MAX_LIMIT, "a count from 1 to "
		NUMBER_TEXT(LINGER_MAX_LIMIT), "a quarter of RLIMIT_NOFILE");
	load_backlog();
	load_ports();
	load_log();
	config.summary = load_word("TCPRARE_SUMMARY", switch_words, config.summary, "on or off", "off");
}

bool config_port_listed(unsigned int port)
{
	if (config.port_ranges == 0)
		return true;
	for (unsigned int i = 0; i < config.port_ranges; i++)
		if (port >= config.ports[i].lo && port <= config.ports[i].hi)
			return true;
	return false;
}

bool config_ports_cover(int fd)
{
	unsigned int local, peer;
	if (config.port_ranges == 0)
		return true;
	fdstate_ports(fd, &local, &peer);
	return config_port_listed(local) || config_port_listed(peer);
}
