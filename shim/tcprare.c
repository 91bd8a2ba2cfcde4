/* tcprare: run a command with libtcprare preloaded.
 *
 * Each option only sets a TCPRARE_* variable. The library checks every value and reports a bad one, so
 * the rules live in one place (config.c) and this wrapper cannot drift from them. The wrapper then
 * appends the library to LD_PRELOAD, warns when the command is out of LD_PRELOAD's reach (statically
 * linked, or setuid), and execs it: the command keeps the wrapper's pid and its exit status is ours. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIBRARY_NAME "libtcprare.so"

static const char usage[] =
	"Usage: tcprare [OPTIONS] [--] COMMAND [ARGS...]\n"
	"Run COMMAND with libtcprare preloaded. Each option sets the variable shown; the library checks\n"
	"the values and reports a bad one. Options take the form --name=VALUE and stop at -- or at the\n"
	"first argument that is not an option.\n"
	"\n"
	"  --closewait=MODE          TCPRARE_CLOSEWAIT (on, observe, off)\n"
	"  --closewait-idle=MS       TCPRARE_CLOSEWAIT_IDLE_MS\n"
	"  --closewait-scope=SCOPE   TCPRARE_CLOSEWAIT_SCOPE (connected, all)\n"
	"  --linger[=MS]             TCPRARE_LINGER=on (lingering close, the default), and\n"
	"                            TCPRARE_LINGER_MS=MS if given\n"
	"  --linger=off|observe      TCPRARE_LINGER=off or observe\n"
	"  --linger-idle=MS          TCPRARE_LINGER_IDLE_MS\n"
	"  --linger-max=N            TCPRARE_LINGER_MAX (sockets lingering at once)\n"
	"  --backlog=N|max|observe|off\n"
	"                            TCPRARE_BACKLOG\n"
	"  --ports=LIST              TCPRARE_PORTS (such as 80,8000-8100)\n"
	"  --observe                 TCPRARE_CLOSEWAIT, TCPRARE_LINGER and TCPRARE_BACKLOG=observe,\n"
	"                            TCPRARE_SUMMARY=on; a later option for one of them overrides it\n"
	"  --log=DEST                TCPRARE_LOG (stderr, syslog, off or a path; %%p is the pid)\n"
	"  --json                    TCPRARE_LOG_FORMAT=json\n"
	"  --summary                 TCPRARE_SUMMARY=on\n"
	"  --help                    show this help\n"
	"  --version                 show the version\n"
	"\n"
	"The library is $TCPRARE_LIBRARY if set, else " LIBRARY_NAME " beside this program, else\n"
	"../lib/tcprare/" LIBRARY_NAME " from this program's directory, else %s.\n"
	"It is appended to LD_PRELOAD. See tcprare(1) and libtcprare(7).\n";

/* Options that set one variable: to their =VALUE, or to a fixed value when they take none. */
static const struct option {
	const char *name;
	const char *variable;
	const char *fixed;
} options[] = {
	{"closewait", "TCPRARE_CLOSEWAIT", NULL},
	{"closewait-idle", "TCPRARE_CLOSEWAIT_IDLE_MS", NULL},
	{"closewait-scope", "TCPRARE_CLOSEWAIT_SCOPE", NULL},
	{"linger-idle", "TCPRARE_LINGER_IDLE_MS", NULL},
	{"linger-max", "TCPRARE_LINGER_MAX", NULL},
	{"backlog", "TCPRARE_BACKLOG", NULL},
	{"ports", "TCPRARE_PORTS", NULL},
	{"log", "TCPRARE_LOG", NULL},
	{"json", "TCPRARE_LOG_FORMAT", "json"},
	{"summary", "TCPRARE_SUMMARY", "on"},
};

#define TRY_HELP "\nTry 'tcprare --help'."

/* Exit statuses as env(1) has them: 2 for usage, 125 for our own failure, 126/127 for the command. */
__attribute__((format(printf, 2, 3))) static _Noreturn void die(int status, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	fputs("tcprare: ", stderr);
	vfprintf(stderr, format, args);
	fputc('\n', stderr);
	va_end(args);
	exit(status);
}

static void set(const char *variable, const char *value)
{
	if (setenv(variable, value, 1) != 0)
		die(125, "cannot set %s: %s", variable, strerror(errno));
}

/* Options take =VALUE only, and flags take none: "--log stderr" would otherwise run a command "stderr".
 * An empty value counts as none, because the library would quietly take it as unset. */
static void check_value(const char *arg, const char *value, bool wanted)
{
	if (wanted && (!value || !*value))
		die(2, "option '%s' needs a value: --NAME=VALUE" TRY_HELP, arg);
	if (!wanted && value)
		die(2, "option '%s' takes no value" TRY_HELP, arg);
}

/* Applies one "--name[=value]"; false if no option has that name. */
static bool apply(const char *arg)
{
	const char *name = arg + 2, *value = strchr(name, '=');
	size_t len = value ? (size_t)(value - name) : strlen(name);
	if (value)
		value++;
#define IS(word) (len == strlen(word) && !strncmp(name, word, len))
	if (IS("help")) {
		check_value(arg, value, false);
		printf(usage, TCPRARE_LIBDIR "/" LIBRARY_NAME);
		exit(0);
	} else if (IS("version")) {
		check_value(arg, value, false);
		printf("tcprare %s\n", TCPRARE_VERSION);
		exit(0);
	} else if (IS("linger")) {
		if (value)
			check_value(arg, value, true);
		bool mode = value && (!strcmp(value, "on") || !strcmp(value, "off") || !strcmp(value, "observe"));
		set("TCPRARE_LINGER", mode ? value : "on");
		if (value && !mode)
			set("TCPRARE_LINGER_MS", value);
		return true;
	} else if (IS("observe")) {
		check_value(arg, value, false);
		set("TCPRARE_CLOSEWAIT", "observe");
		set("TCPRARE_LINGER", "observe");
		set("TCPRARE_BACKLOG", "observe");
		set("TCPRARE_SUMMARY", "on");
		return true;
	}
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		if (IS(options[i].name)) {
			check_value(arg, value, !options[i].fixed);
			set(options[i].variable, value ? value : options[i].fixed);
			return true;
		}
	}
#undef IS
	return false;
}

/* Returns the index of COMMAND in argv. Left to right, so a later option overrides an earlier one. */
static int parse_options(int argc, char **argv)
{
	int i;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--"))
			return i + 1;
		if (strncmp(argv[i], "--", 2) || !apply(argv[i]))
			die(2, "unknown option '%s'" TRY_HELP, argv[i]);
	}
	return i;
}

/* TCPRARE_LIBRARY alone if set: an explicit choice should fail loudly, not fall back. Otherwise beside
 * our own executable (the build tree), then ../lib/tcprare (an install, wherever its prefix moved), then
 * the directory compiled in. The result is absolute, so the command may chdir freely. */
static char *find_library(void)
{
	static char places[3][PATH_MAX + 32];
	const char *override = getenv("TCPRARE_LIBRARY");
	char self[PATH_MAX];
	int n = 0;

	if (override && *override) {
		snprintf(places[n++], sizeof(places[0]), "%s", override);
	} else {
		ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
		char *slash;
		if (len > 0 && (self[len] = '\0', slash = strrchr(self, '/'))) {
			*slash = '\0';
			snprintf(places[n++], sizeof(places[0]), "%s/" LIBRARY_NAME, self);
			snprintf(places[n++], sizeof(places[0]), "%s/../lib/tcprare/" LIBRARY_NAME, self);
		}
		snprintf(places[n++], sizeof(places[0]), "%s", TCPRARE_LIBDIR "/" LIBRARY_NAME);
	}
	for (int i = 0; i < n; i++) {
		char *found;
		if (access(places[i], R_OK) == 0 && (found = realpath(places[i], NULL)))
			return found;
	}
	fputs("tcprare: cannot find " LIBRARY_NAME " (looked in ", stderr);
	for (int i = 0; i < n; i++)
		fprintf(stderr, "%s%s", i ? ", " : "", places[i]);
	fputs(")\n", stderr);
	exit(127);
}

/* ld.so splits LD_PRELOAD at ':' and ' '. An entry naming the same file by another path counts too. */
static bool preload_names(const char *list, const char *library)
{
	char *copy = strdup(list), *save, *entry;
	bool found = false;
	if (!copy)
		die(125, "out of memory");
	for (entry = strtok_r(copy, ": ", &save); entry && !found; entry = strtok_r(NULL, ": ", &save)) {
		char *resolved = strchr(entry, '/') ? realpath(entry, NULL) : NULL;
		found = !strcmp(entry, library) || (resolved && !strcmp(resolved, library));
		free(resolved);
	}
	free(copy);
	return found;
}

/* Append, never replace: what is already there (a sanitizer runtime, say) must stay, and stay first. */
static void add_to_preload(const char *library)
{
	const char *old = getenv("LD_PRELOAD");
	if (!old || !*old) {
		set("LD_PRELOAD", library);
	} else if (!preload_names(old, library)) {
		char *joined;
		if (asprintf(&joined, "%s:%s", old, library) < 0)
			die(125, "out of memory");
		set("LD_PRELOAD", joined);
		free(joined);
	}
}

/* The file execvp would run for `command` (into buf), or NULL. Only used for warnings. */
static const char *resolve_command(const char *command, char *buf, size_t size)
{
	const char *path = getenv("PATH");
	struct stat st;
	if (strchr(command, '/'))
		return command;
	if (!path)
		path = "/bin:/usr/bin"; /* glibc's execvp default */
	for (const char *dir = path;; dir += strcspn(dir, ":") + 1) {
		int len = (int)strcspn(dir, ":");
		snprintf(buf, size, "%.*s%s%s", len, dir, len ? "/" : "", command); /* "" means "." */
		if (access(buf, X_OK) == 0 && stat(buf, &st) == 0 && S_ISREG(st.st_mode))
			return buf;
		if (!dir[len])
			return NULL;
	}
}

/* An ELF executable without PT_INTERP is started by the kernel itself: no dynamic loader runs, so
 * nothing reads LD_PRELOAD. Only native byte order is judged. p_type leads both Phdr layouts. */
static bool is_static_elf(int fd, const unsigned char *head, size_t got)
{
	uint64_t phoff;
	unsigned int phentsize, phnum;
	uint32_t type;
	bool native = head[EI_DATA] == (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB);

	if (got < sizeof(Elf64_Ehdr) || memcmp(head, ELFMAG, SELFMAG) || !native)
		return false;
	if (head[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr e;
		memcpy(&e, head, sizeof(e));
		phoff = e.e_phoff, phentsize = e.e_phentsize, phnum = e.e_phnum;
	} else if (head[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr e;
		memcpy(&e, head, sizeof(e));
		phoff = e.e_phoff, phentsize = e.e_phentsize, phnum = e.e_phnum;
	} else {
		return false;
	}
	for (unsigned int i = 0; i < phnum; i++) {
		if (pread(fd, &type, sizeof(type), (off_t)(phoff + (uint64_t)i * phentsize)) != sizeof(type))
			return false; /* truncated: not ours to judge */
		if (type == PT_INTERP)
			return false;
	}
	return true;
}

/* Warns when LD_PRELOAD cannot reach the program `path` starts. A script is judged by its interpreter,
 * since that is what the kernel runs ("#!/usr/bin/env X" runs X from PATH); depth stops #! loops. */
static void warn_if_unreachable(const char *path, int depth)
{
	unsigned char head[256] = {0};
	char found[PATH_MAX];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got = fd >= 0 ? pread(fd, head, sizeof(head) - 1, 0) : 0;

	if (got < 0)
		got = 0; /* a directory, say: execvp will say why */
	if (got > 2 && head[0] == '#' && head[1] == '!') {
		char *save, *word = strtok_r((char *)head + 2, " \t\n", &save);
		const char *base = word ? strrchr(word, '/') : NULL, *interpreter = word;
		if (base && !strcmp(base, "/env")) {
			/* env's own options and assignments come before the program it looks up in PATH */
			while ((word = strtok_r(NULL, " \t\n", &save)) && (word[0] == '-' || strchr(word, '=')))
				;
			interpreter = word ? resolve_command(word, found, sizeof(found)) : NULL;
		}
		if (interpreter && depth < 4)
			warn_if_unreachable(interpreter, depth + 1);
	} else {
		if (fd >= 0 && is_static_elf(fd, head, (size_t)got))
			fprintf(stderr, "tcprare: warning: %s is statically linked: libtcprare cannot act on it\n", path);
		/* The kernel ignores these bits on scripts, so only a binary can be secure-mode, and only
		 * if they change our ids: its owner running a setuid binary is not. Without S_IXGRP the
		 * setgid bit means mandatory locking, not setgid. */
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    (((st.st_mode & S_ISUID) && st.st_uid != getuid()) ||
		     ((st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) && st.st_gid != getgid())))
			fprintf(stderr,
				"tcprare: warning: %s is setuid/setgid: the dynamic loader ignores LD_PRELOAD for it\n",
				path);
	}
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	int first = parse_options(argc, argv);
	char found[PATH_MAX];
	const char *program;

	if (first >= argc)
		die(2, "no command given" TRY_HELP);
	add_to_preload(find_library());
	if ((program = resolve_command(argv[first], found, sizeof(found))))
		warn_if_unreachable(program, 0);
	execvp(argv[first], &argv[first]);
	int failure = errno; /* 127: there is no such command; 126: there is, but it cannot run */
	die(failure == ENOENT ? 127 : 126, "cannot run %s: %s", argv[first], strerror(failure));
}
