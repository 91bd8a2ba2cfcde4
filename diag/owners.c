#include "owners.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COMM_MAX 15 /* TASK_COMM_LEN - 1: the kernel cuts longer names to this */

struct wanted_inode {
	uint64_t inode;
	size_t index;   /* into owners[] */
	pid_t last_pid; /* the last process seen holding it: a socket is listed once per descriptor */
};

static int by_inode(const void *a, const void *b)
{
	uint64_t x = ((const struct wanted_inode *)a)->inode, y = ((const struct wanted_inode *)b)->inode;
	return x < y ? -1 : x > y;
}

static ssize_t read_small_file(int dir, const char *name, char *buf, size_t size)
{
	int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t got = read(fd, buf, size - 1);
	close(fd);
	if (got < 0)
		return -1;
	buf[got] = '\0';
	return got;
}

void owner_prog(pid_t pid, char *prog, size_t size)
{
	char path[32], comm[64], cmdline[4096];
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	snprintf(prog, size, "-");
	int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return;
	ssize_t got = read_small_file(dir, "comm", comm, sizeof(comm));
	if (got > 0 && comm[got - 1] == '\n')
		comm[--got] = '\0';
	if (got > 0)
		snprintf(prog, size, "%s", comm);
	/* A name cut to 15 bytes: argv[0]'s last part, if the cut name begins it. A process that retitles
	 * itself ("nginx: worker process") keeps its short comm. */
	if (got == COMM_MAX && read_small_file(dir, "cmdline", cmdline, sizeof(cmdline)) > 0) {
		const char *slash = strrchr(cmdline, '/'), *base = slash ? slash + 1 : cmdline;
		if (!strncmp(base, comm, COMM_MAX))
			snprintf(prog, size, "%s", base);
	}
	close(dir);
}

/* "socket:[12345]" -> 12345; 0 for any other link. */
static uint64_t socket_inode(const char *link)
{
	if (strncmp(link, "socket:[", 8))
		return 0;
	char *end;
	unsigned long long inode = strtoull(link + 8, &end, 10);
	return *end == ']' ? inode : 0;
}

static void note_holder(struct owner *o, pid_t pid, pid_t wanted)
{
	o->holders++;
	if (pid == wanted)
		o->held_by_wanted = true;
	if (o->status != OWNER_FOUND || pid == wanted || (o->pid != wanted && pid < o->pid)) {
		o->status = OWNER_FOUND;
		o->pid = pid;
	}
}

/* Reads one process's descriptors; false if /proc would not let us. */
static bool scan_process(pid_t pid, struct wanted_inode *sorted, size_t count, struct owner *owners,
			 pid_t wanted)
{
	char path[48];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *fds = opendir(path);
	if (!fds)
		return errno != EACCES && errno != EPERM; /* ENOENT: it ended meanwhile, nothing hidden */
	struct dirent *entry;
	while ((entry = readdir(fds))) {
		char link[64];
		if (entry->d_name[0] == '.')
			continue;
		ssize_t len = readlinkat(dirfd(fds), entry->d_name, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		struct wanted_inode key = {.inode = socket_inode(link)};
		if (!key.inode)
			continue;
		struct wanted_inode *hit = bsearch(&key, sorted, count, sizeof(*sorted), by_inode);
		if (!hit || hit->last_pid == pid)
			continue;
		hit->last_pid = pid;
		note_holder(&owners[hit->index], pid, wanted);
	}
	closedir(fds);
	return true;
}

int owners_find(const uint64_t *inodes, const uint32_t *socket_uids, struct owner *owners, size_t count,
		pid_t wanted, struct owner_lookup *lookup)
{
	*lookup = (struct owner_lookup){0};
	struct wanted_inode *sorted = calloc(count ? count : 1, sizeof(*sorted));
	if (!sorted)
		return -1;
	for (size_t i = 0; i < count; i++) {
		sorted[i] = (struct wanted_inode){.inode = inodes[i], .index = i};
		owners[i] = (struct owner){.status = OWNER_NONE, .held_by_wanted = !wanted};
	}
	qsort(sorted, count, sizeof(*sorted), by_inode);

	DIR *proc = opendir("/proc");
	if (!proc) {
		free(sorted);
		return -1;
	}
	struct dirent *entry;
	while ((entry = readdir(proc))) {
		char *end;
		long pid = strtol(entry->d_name, &end, 10);
		if (!isdigit((unsigned char)entry->d_name[0]) || *end || pid <= 0)
			continue;
		lookup->processes++;
		bool readable = scan_process((pid_t)pid, sorted, count, owners, wanted);
		if (!readable)
			lookup->hidden++;
		if (pid == wanted) {
			lookup->wanted_exists = true;
			lookup->wanted_readable = readable;
		}
	}
	closedir(proc);
	free(sorted);

	/* With hidepid, /proc does not even list other users' processes: a socket of another user's,
	 * not found, is hidden too. */
	uid_t me = geteuid();
	for (size_t i = 0; i < count; i++) {
		struct owner *o = &owners[i];
		if (o->status == OWNER_FOUND)
			owner_prog(o->pid, o->prog, sizeof(o->prog));
		else {
			snprintf(o->prog, sizeof(o->prog), "-");
			if (lookup->hidden || (me != 0 && socket_uids[i] != me))
				o->status = OWNER_HIDDEN;
		}
	}
	return 0;
}
