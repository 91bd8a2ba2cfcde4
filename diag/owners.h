/* Which process holds a socket: the "socket:[INODE]" links in /proc/PID/fd, as ss -p and lsof find
 * them. Only the process's own user (or root) may read its fd directory; the processes this user
 * may not look into are counted, so that an owner not found can be told apart from one hidden. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PROG_MAX 100 /* as the library's log cuts a program's name */

enum owner_status {
	OWNER_FOUND,
	OWNER_HIDDEN, /* not found, and /proc hid some processes' descriptors from this user */
	OWNER_NONE,   /* not found, though every process's descriptors could be read */
};

struct owner {
	enum owner_status status;
	pid_t pid;     /* with OWNER_FOUND: the process asked for with --pid if it holds the socket,
			* else the lowest pid holding it */
	unsigned int holders; /* processes holding the socket (a listener shared by forked workers) */
	char prog[PROG_MAX + 1];
	bool held_by_wanted;  /* the process asked for holds it (always true without one) */
};

struct owner_lookup {
	unsigned int processes, hidden; /* processes seen in /proc, and those whose fds were not readable */
	bool wanted_readable;           /* with wanted: its fds could be read */
	bool wanted_exists;
};

/* Finds the owners of the count sockets with the given inodes (owners[i] for inodes[i]). wanted: a
 * pid to prefer and to mark (held_by_wanted), or 0. socket_uids[i], the uid that created socket i,
 * tells a socket of another user's as hidden even where /proc hides whole processes (hidepid).
 * Returns 0, or -1 with errno if /proc cannot be read. */
int owners_find(const uint64_t *inodes, const uint32_t *socket_uids, struct owner *owners, size_t count,
		pid_t wanted, struct owner_lookup *lookup);

/* A process's name as the library's log gives it (its argv[0] without the directory): /proc/PID/comm,
 * unless the kernel cut that to 15 bytes, then argv[0]. "-" if the process is gone. */
void owner_prog(pid_t pid, char *prog, size_t size);
