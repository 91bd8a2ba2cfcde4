#include "config.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>

#define CLOSEWAIT_IDLE_MS_DEFAULT 10 /* see libtcprare(7): a check costs ~0.3 us, so at most 0.003% */
#define LINGER_MS_DEFAULT 30000
#define TEXT(x) #x
#define NUMBER_TEXT(x) TEXT(x)

struct config config;

static const struct config defaults = {
	.closewait = MODE_ON,
	.closewait_idle_ms = CLOSEWAIT_IDLE_MS_DEFAULT,
	.linger = MODE_OFF,
	.linger_ms = LINGER_MS_DEFAULT,
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

static void load_mode(const char *name, enum mode *mode, const char *fallback)
{
	const char *v = setting(name);
	if (!v)
		return;
	if (!strcasecmp(v, "on"))
		*mode = MODE_ON;
	else if (!strcasecmp(v, "observe"))
		*mode = MODE_OBSERVE;
	else if (!strcasecmp(v, "off"))
		*mode = MODE_OFF;
	else
		reject(name, v, "on, observe or off", fallback);
}

static void load_ms(const char *name, uint32_t *ms, unsigned long min, unsigned long max, const char *expected,
		    const char *fallback)
{
	const char *v = setting(name);
	unsigned long n;
	if (!v)
		return;
	if (parse_number(v, min, max, &n))
		*ms = (uint32_t)n;
	else
		reject(name, v, expected, fallback);
}

static void load_closewait_scope(void)
{
	const char *v = setting("TCPRARE_CLOSEWAIT_SCOPE");
	if (!v)
		return;
	if (!strcasecmp(v, "connected"))
		config.closewait_scope_all = false;
	else if (!strcasecmp(v, "all"))
		config.closewait_scope_all = true;
	else
		reject("TCPRARE_CLOSEWAIT_SCOPE", v, "connected or all", "connected");
}

static void load_backlog(void)
{
	const char *v = setting("TCPRARE_BACKLOG");
	unsigned long n;
	if (!v)
		return;
	if (!strcasecmp(v, "max"))
		config.backlog = BACKLOG_MAX;
	else if (!strcasecmp(v, "observe"))
		config.backlog = BACKLOG_OBSERVE;
	else if (!strcasecmp(v, "off"))
		config.backlog = BACKLOG_OFF;
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
		config.port_ranges = 0;
		reject("TCPRARE_PORTS", v, "ports or ranges such as 80,8000-8100 (1 to 65535, at most 32 items)",
		       "every port");
	}
}

static void load_log(void)
{
	const char *v = setting("TCPRARE_LOG");
	if (v) {
		if (!strcasecmp(v, "stderr"))
			config.log = LOG_STDERR;
		else if (!strcasecmp(v, "syslog"))
			config.log = LOG_SYSLOG;
		else if (!strcasecmp(v, "off"))
			config.log = LOG_OFF;
		else if (strchr(v, '/') && strlen(v) < sizeof(config.log_path)) {
			config.log = LOG_FILE;
			strcpy(config.log_path, v);
		} else
			reject("TCPRARE_LOG", v, "stderr, syslog, off or a file path containing '/' (%p: the pid)",
			       "stderr");
	}
	v = setting("TCPRARE_LOG_FORMAT");
	if (v) {
		if (!strcasecmp(v, "text"))
			config.log_format = LOG_TEXT;
		else if (!strcasecmp(v, "json"))
			config.log_format = LOG_JSON;
		else
			reject("TCPRARE_LOG_FORMAT", v, "text or json", "text");
	}
}

static void load_summary(void)
{
	const char *v = setting("TCPRARE_SUMMARY");
	if (!v)
		return;
	if (!strcasecmp(v, "on"))
		config.summary = true;
	else if (!strcasecmp(v, "off"))
		config.summary = false;
	else
		reject("TCPRARE_SUMMARY", v, "on or off", "off");
}

void config_load(void)
{
	config = defaults;
	if (getauxval(AT_SECURE))
		return; /* setuid and the like: the environment is not the program's owner's to trust */
	load_mode("TCPRARE_CLOSEWAIT", &config.closewait, "on");
	load_ms("TCPRARE_CLOSEWAIT_IDLE_MS", &config.closewait_idle_ms, 0, 86400000,
		"milliseconds from 0 to 86400000", NUMBER_TEXT(CLOSEWAIT_IDLE_MS_DEFAULT));
	load_closewait_scope();
	load_mode("TCPRARE_LINGER", &config.linger, "off");
	load_ms("TCPRARE_LINGER_MS", &config.linger_ms, 1, 600000, "milliseconds from 1 to 600000",
		NUMBER_TEXT(LINGER_MS_DEFAULT));
	load_backlog();
	load_ports();
	load_log();
	load_summary();
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
