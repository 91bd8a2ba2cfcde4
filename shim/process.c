#include "process.h"
#include "real.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Descendants looked at, at most: beyond, the answer is "may hold it". Small, on the stack: a close()
 * may run in a signal handler on a small alternate stack. */
#define MAX_DESCENDANTS 256

/* Children made by fork() or posix_spawn(), the latest ones: one forgotten is only looked at. */
#define MAX_KNOWN_CHILDREN 64

static pid_t self;
static pid_t known_children[MAX_KNOWN_CHILDREN];
static unsigned int next_known;

void process_note_child(pid_t pid)
{
	unsigned int i = __atomic_fetch_add(&next_known, 1, __ATOMIC_RELAXED) % MAX_KNOWN_CHILDREN;
	__atomic_store_n(&known_children[i], pid, __ATOMIC_RELAXED);
}

static bool known_child(pid_t pid)
{
	for (unsigned int i = 0; i < MAX_KNOWN_CHILDREN; i++)
		if (__atomic_load_n(&known_children[i], __ATOMIC_RELAXED) == pid)
			return true;
	return false;
}

void process_note_self(void)
{
	__atomic_store_n(&self, getpid(), __ATOMIC_RELAXED);
	for (unsigned int i = 0; i < MAX_KNOWN_CHILDREN; i++) /* a forked child's children are its own */
		__atomic_store_n(&known_children[i], 0, __ATOMIC_RELAXED);
}

bool process_is_unseen_child(void)
{
	pid_t recorded = __atomic_load_n(&self, __ATOMIC_RELAXED);
	return recorded != 0 && getpid() != recorded;
}

/* --- /proc, without stdio or malloc --- */

struct path {
	char text[64];
	size_t len;
};

static void append(struct path *p, const char *s)
{
	while (*s && p->len < sizeof(p->text) - 1)
		p->text[p->len++] = *s++;
	p->text[p->len] = '\0';
}

static void append_number(struct path *p, unsigned long v)
{
	char digits[24], *d = digits + sizeof(digits);
	*--d = '\0';
	do
		*--d = (char)('0' + v % 10);
	while (v /= 10);
	append(p, d);
}

/* "/proc/PID/rest" */
static struct path proc_path(pid_t pid, const char *rest)
{
	struct path p = {.len = 0};
	append(&p, "/proc/");
	append_number(&p, (unsigned long)pid);
	append(&p, rest);
	return p;
}

/* Calls each(dir, name, number) for every entry of the open directory whose name is a number, until
 * it returns false. Returns false if the directory could not be read. */
bool process_each_numbered(int dir, bool (*each)(int dir, const char *name, long number, void *ctx), void *ctx)
{
	char buf[1024];
	long n;
	while ((n = syscall(SYS_getdents64, dir, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			char *end;
			long number = strtol(d->d_name, &end, 10);
			off += d->d_reclen;
			if (*end == '\0' && end != d->d_name && number >= 0 && !each(dir, d->d_name, number, ctx))
				return true;
		}
	}
	return n == 0;
}

/* --- who holds a socket --- */

struct search {
	uint32_t inode;
	pid_t origin;  /* this process */
	pid_t current; /* the process being looked at */
	bool unsure;   /* something could not be looked at: assume it holds the socket */
	bool found;
	size_t count;
	pid_t pids[MAX_DESCENDANTS];
};

static void add_pid(struct search *s, long pid)
{
	if (s->current == s->origin && known_child((pid_t)pid))
		return; /* made by fork() or posix_spawn(): the table knows what it holds */
	if (s->count == MAX_DESCENDANTS)
		s->unsure = true;
	else
		s->pids[s->count++] = (pid_t)pid;
}

/* /proc/PID/task/TID/children: the pids of the thread's children, separated by spaces. */
static bool add_children_of_thread(int dir, const char *tid, long number, void *ctx)
{
	(void)dir, (void)number;
	struct search *s = ctx;
	struct path p = proc_path(s->current, "/task/");
	append(&p, tid);
	append(&p, "/children");
	int fd = open(p.text, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		s->unsure |= errno != ENOENT; /* ENOENT: a thread that has just ended */
		return !s->unsure;
	}
	char buf[512];
	long pid = -1;
	ssize_t n;
	while ((n = real.read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				pid = (pid < 0 ? 0 : pid * 10) + (buf[i] - '0');
			} else if (pid >= 0) {
				add_pid(s, pid);
				pid = -1;
			}
		}
	}
	if (pid >= 0)
		add_pid(s, pid);
	s->unsure |= n < 0;
	real.close(fd);
	return !s->unsure;
}

/* Is this one of the process's descriptors the socket? */
static bool check_descriptor(int dir, const char *name, long number, void *ctx)
{
	(void)number;
	struct search *s = ctx;
	struct stat st;
	if (fstatat(dir, name, &st, 0) == 0)
		s->found = S_ISSOCK(st.st_mode) && (uint32_t)st.st_ino == s->inode;
	else
		s->unsure |= errno != ENOENT; /* ENOENT: closed meanwhile */
	return !s->found && !s->unsure;
}

/* Calls each for every numbered entry of /proc/PID/<rest>. A process that is gone has nothing. */
static void look_into(struct search *s, const char *rest,
		      bool (*each)(int dir, const char *name, long number, void *ctx))
{
	struct path p = proc_path(s->current, rest);
	int dir = open(p.text, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		s->unsure |= errno != ENOENT;
		return;
	}
	s->unsure |= !process_each_numbered(dir, each, s) && errno != ENOENT; /* ENOENT: it has just ended */
	real.close(dir);
}

bool process_descendant_holds(uint32_t inode)
{
	int saved = errno;
	siginfo_t info;
	/* Raw: waitid is a cancellation point in libc. WNOWAIT: the program's children stay as they are. */
	long rc = syscall(SYS_waitid, P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT | __WALL, NULL);
	if (rc != 0) {
		bool childless = errno == ECHILD;
		errno = saved;
		return !childless;
	}
	struct search s = {.inode = inode, .origin = getpid()};
	s.current = s.origin;
	/* The calling thread is alive: without its children file, the kernel has no such files
	 * (CONFIG_PROC_CHILDREN), or there is no /proc. */
	s.unsure = access("/proc/thread-self/children", F_OK) != 0;
	if (!s.unsure)
		look_into(&s, "/task", add_children_of_thread);
	/* Breadth first: a child's children were copied from it, and may hold the socket too. */
	for (size_t i = 0; i < s.count && !s.found && !s.unsure; i++) {
		s.current = s.pids[i];
		look_into(&s, "/fd", check_descriptor);
		if (!s.found && !s.unsure)
			look_into(&s, "/task", add_children_of_thread);
	}
	errno = saved;
	return s.found || s.unsure;
}
