/* Descriptors the library holds for itself (a log file, the syslog socket, the lingering drain's epoll
 * instance and doorbell).
 *
 * They sit above the program's usual range, in the upper half of the first 64 numbers while one is
 * free there (past 64 the kernel's descriptor table grows out of line, and every system call of the
 * process pays: see ownfd.c), else from 1024 up (select() users need the low numbers), are close-on-exec,
 * and stay out of the program's reach: close() on one fails with EBADF, exactly as on an unused number,
 * and dup2() or close_range() over one moves or spares it first. glibc's closefrom() closes them behind
 * our back anyway, so a holder checks ownfd_intact() before each use. */
#pragma once
#include <stdbool.h>

/* Moves fd to the private range and remembers *slot as its holder, which ownfd keeps up to date.
 * Returns the new number, or -1 (and fd is closed) if there is no room. */
int ownfd_keep(int fd, int *slot);
/* Where the private range starts: above the low numbers select() programs need, but not so high that
 * the kernel grows a huge descriptor table for us (a soft limit of 1M would otherwise cost 8 MiB). */
int ownfd_private_floor(void);
/* Closes *slot and forgets it; sets *slot to -1. */
void ownfd_drop(int *slot);
/* True if *slot still names the file it named when kept; if not (closefrom() closed it behind our
 * back), forgets it without closing, sets *slot to -1 and returns false. */
bool ownfd_intact(int *slot);

/* In a forked child: frees entries that another thread was filling in at the fork. */
void ownfd_after_fork_child(void);

/* Entries [0, ownfd_reached) of ownfd.c's table have ever been held; none, in a process that never
 * kept a descriptor (the log on stderr, nothing lingered yet). Read by the inline test below. */
extern unsigned int ownfd_reached;
bool ownfd_find_kept(int fd);
/* Is fd one of ours? Inline: close() asks for every number the descriptor table does not know (files,
 * pipes), and without a descriptor kept that costs a load. */
static inline bool ownfd_is_ours(int fd)
{
	return __atomic_load_n(&ownfd_reached, __ATOMIC_ACQUIRE) && ownfd_find_kept(fd);
}
/* The program is about to take this number (dup2 target): ours moves elsewhere first. True if one
 * of ours was there: if the program's call then fails, the number is to be closed. */
bool ownfd_make_room(int fd);
/* close_range(first, last) minus our descriptors: calls close_one on each remaining sub-range. */
int ownfd_close_range_around(unsigned int first, unsigned int last, int flags,
			     int (*close_one)(unsigned int, unsigned int, int));
