#include "ownfd.h"
#include "fdstate.h"
#include "high_water.h"
#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define MAX_OWN 8

/* Any thread may keep, check or forget one at any time (the log reopens its file in whichever thread
 * logs), so every field is accessed atomically, and an entry is claimed with a compare-and-swap. */
static struct own {
	int *slot; /* the holder's variable; NULL: free; &claimed: being filled in */
	dev_t dev;
	ino_t ino;
} owned[MAX_OWN];

/* The slot of an entry being filled in: its number, -1, matches no descriptor. */
static int claimed = -1;

/* Entries [0, ownfd_reached) have ever been claimed; those above are free, and every search stops
 * there. */
unsigned int ownfd_reached;

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

int ownfd_private_floor(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 2048)
		return 1024;
	return rl.rlim_cur > 16 ? (int)rl.rlim_cur / 2 : 3;
}

/* The kernel keeps a process's first 64 descriptors (BITS_PER_LONG) in an array inside its
 * files_struct; the first number past them moves the table, for good, into allocations of its own,
 * which every system call on any descriptor then reads through (fs/file.c, expand_files). On a
 * machine whose system calls flush the TLB (PTI without PCID, as in many VMs) those are more pages
 * to walk on every call: a log file kept at 1024 made dd's 1-byte copy 5% slower, though nothing was
 * ever logged. So ours take the highest free number of the upper half of that array, while the
 * program leaves one free; the numbers a program gets from open() stay the low ones, as before. */
#define EMBEDDED_FDS 64

/* The highest free number in [EMBEDDED_FDS / 2, EMBEDDED_FDS), or -1. Only a hint: another thread may
 * take it meanwhile, and F_DUPFD then gives the next free one above. */
static int embedded_free(void)
{
	for (int n = EMBEDDED_FDS - 1; n >= EMBEDDED_FDS / 2; n--)
		if (real.fcntl(n, F_GETFD) < 0 && errno == EBADF)
			return n;
	return -1;
}

/* A close-on-exec copy of fd where ours go, or -1. */
static int copy_aside(int fd)
{
	int floor = ownfd_private_floor(), copy = -1;
	int spot = floor >= EMBEDDED_FDS ? embedded_free() : -1; /* a lower limit keeps the old floor */
	if (spot >= 0 && (copy = real.fcntl(fd, F_DUPFD_CLOEXEC, spot)) >= EMBEDDED_FDS) {
		real.close(copy); /* taken meanwhile, and the rest of the array too */
		copy = -1;
	}
	if (copy < 0)
		copy = real.fcntl(fd, F_DUPFD_CLOEXEC, floor);
	if (copy < 0) /* no room up there: anywhere, as long as it is close-on-exec */
		copy = real.fcntl(fd, F_DUPFD_CLOEXEC, 3);
	/* A number of ours is no socket of the program's: an entry a socket closed behind our back left
	 * there goes, so that close() tells the program's sockets from ours by the table alone. */
	fdstate_forget(copy);
	return copy;
}

static int move_aside(int fd)
{
	int moved = copy_aside(fd);
	real.close(fd);
	return moved;
}

/* Does the registered descriptor still name the file we kept? glibc's closefrom() closes ours
 * without a word, and the number may then be the program's. If not, forget it, without closing. */
static bool still_ours(struct own *own)
{
	int *slot = LOAD(own->slot);
	struct stat st;
	if (!slot || slot == &claimed)
		return false;
	int saved = errno;
	int fd = LOAD(*slot);
	bool same = fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == LOAD(own->dev) && st.st_ino == LOAD(own->ino);
	errno = saved;
	/* The holder's variable first, and only if it still holds the number found wanting: once the
	 * entry is free, the holder may keep a new descriptor in it at any moment. */
	if (!same && fd >= 0 && __atomic_compare_exchange_n(slot, &fd, -1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		__atomic_compare_exchange_n(&own->slot, &slot, NULL, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	return same;
}

/* Ours, by number, and confirmed (an fstat only when the number matches). */
static struct own *find(int fd)
{
	for (unsigned int i = 0, n = LOAD(ownfd_reached); i < n; i++) {
		int *slot = LOAD(owned[i].slot);
		if (slot && LOAD(*slot) == fd)
			return still_ours(&owned[i]) ? &owned[i] : NULL;
	}
	return NULL;
}

static struct own *holder(const int *slot)
{
	for (unsigned int i = 0, n = LOAD(ownfd_reached); i < n; i++)
		if (LOAD(owned[i].slot) == slot)
			return &owned[i];
	return NULL;
}
int ownfd_keep(int fd, int *slot)
{
	int saved = errno;
	struct stat st;
	fd = move_aside(fd);
	if (fd >= 0 && fstat(fd, &st) == 0) {
		for (int i = 0; i < MAX_OWN; i++) {
			int *free = NULL;
			if (!__atomic_compare_exchange_n(&owned[i].slot, &free, &claimed, false, __ATOMIC_ACQ_REL,
							 __ATOMIC_RELAXED))
				continue;
			high_water_raise(&ownfd_reached, (unsigned int)i + 1);
			STORE(owned[i].dev, st.st_dev);
			STORE(owned[i].ino, st.st_ino);
			STORE(*slot, fd);
			STORE(owned[i].slot, slot);
			errno = saved;
			return fd;
		}
	}
	if (fd >= 0)
		real.close(fd);
	STORE(*slot, -1);
	errno = saved;
	return -1;
}

void ownfd_drop(int *slot)
{
	struct own *own = holder(slot);
	int saved = errno;
	if (own && still_ours(own)) {
		real.close(LOAD(*slot));
		STORE(own->slot, NULL);
	}
	STORE(*slot, -1);
	errno = saved;
}
bool ownfd_intact(int *slot)
{
	struct own *own = holder(slot);
	if (own && still_ours(own))
		return true;
	STORE(*slot, -1);
	return false;
}
void ownfd_after_fork_child(void)
{
	/* An entry another thread of the parent was filling in stays half-made here: free it (what it
	 * was to keep is a close-on-exec descriptor the child never learns about). */
	for (int i = 0; i < MAX_OWN; i++) {
		int *slot = &claimed;
		__atomic_compare_exchange_n(&owned[i].slot, &slot, NULL, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	}
}

bool ownfd_find_kept(int fd)
{
	return fd >= 0 && find(fd) != NULL;
}

bool ownfd_make_room(int fd)
{
	struct own *own = find(fd);
	int *slot = own ? LOAD(own->slot) : NULL;
	if (!slot || slot == &claimed || LOAD(*slot) != fd) /* not ours, or no longer by now */
		return false;
	int saved = errno;
	int moved = copy_aside(fd);
	STORE(*slot, moved);
	if (moved < 0)
		STORE(own->slot, NULL); /* lost it: the holder sees -1 */
	errno = saved;
	/* fd itself is closed by the program's dup2, which is about to replace it. */
	return true;
}
/* The lowest of our descriptors in [from, last], or -1. */
static long lowest_own_in(unsigned int from, unsigned int last)
{
	long lowest = -1;
	for (unsigned int i = 0, n = LOAD(ownfd_reached); i < n; i++) {
		int *slot = LOAD(owned[i].slot);
		int fd = slot ? LOAD(*slot) : -1;
		if (fd >= 0 && (unsigned int)fd >= from && (unsigned int)fd <= last && (lowest < 0 || fd < lowest) &&
		    still_ours(&owned[i])) /* after closefrom(), the number may be the program's */
			lowest = fd;
	}
	return lowest;
}

int ownfd_close_range_around(unsigned int first, unsigned int last, int flags,
			     int (*close_one)(unsigned int, unsigned int, int))
{
	int rc = 0;
	for (unsigned int from = first; from <= last;) {
		long own = lowest_own_in(from, last);
		unsigned int to = own < 0 ? last : (unsigned int)own - 1;
		if ((own < 0 || (unsigned int)own > from) && close_one(from, to, flags) != 0)
			rc = -1;
		if (own < 0 || (unsigned int)own == last)
			break;
		from = (unsigned int)own + 1;
	}
	return rc;
}
