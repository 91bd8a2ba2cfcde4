#include "ownfd.h"
#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define MAX_OWN 8

static struct own {
	int *slot; /* the holder's variable; NULL: free */
	dev_t dev;
	ino_t ino;
} owned[MAX_OWN];

int ownfd_private_floor(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 2048)
		return 1024;
	return rl.rlim_cur > 16 ? (int)rl.rlim_cur / 2 : 3;
}

static int move_high(int fd)
{
	int moved = real.fcntl(fd, F_DUPFD_CLOEXEC, ownfd_private_floor());
	if (moved < 0) /* no room up there: anywhere, as long as it is close-on-exec */
		moved = real.fcntl(fd, F_DUPFD_CLOEXEC, 3);
	real.close(fd);
	return moved;
}

/* Does the registered descriptor still name the file we kept? glibc's closefrom() closes ours
 * without a word, and the number may then be the program's. If not, forget it, without closing. */
static bool still_ours(struct own *own)
{
	int *slot = __atomic_load_n(&own->slot, __ATOMIC_ACQUIRE);
	struct stat st;
	if (!slot)
		return false;
	int saved = errno;
	int fd = __atomic_load_n(slot, __ATOMIC_RELAXED);
	bool same = fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == own->dev && st.st_ino == own->ino;
	errno = saved;
	if (!same) {
		__atomic_store_n(slot, -1, __ATOMIC_RELAXED);
		__atomic_store_n(&own->slot, NULL, __ATOMIC_RELEASE);
	}
	return same;
}

/* Ours, by number, and confirmed (an fstat only when the number matches). */
static struct own *find(int fd)
{
	for (int i = 0; i < MAX_OWN; i++) {
		int *slot = __atomic_load_n(&owned[i].slot, __ATOMIC_ACQUIRE);
		if (slot && __atomic_load_n(slot, __ATOMIC_RELAXED) == fd)
			return still_ours(&owned[i]) ? &owned[i] : NULL;
	}
	return NULL;
}

static struct own *holder(const int *slot)
{
	for (int i = 0; i < MAX_OWN; i++)
		if (__atomic_load_n(&owned[i].slot, __ATOMIC_ACQUIRE) == slot)
			return &owned[i];
	return NULL;
}
int ownfd_keep(int fd, int *slot)
{
	int saved = errno;
	struct stat st;
	fd = move_high(fd);
	*slot = fd;
	if (fd >= 0 && fstat(fd, &st) == 0) {
		for (int i = 0; i < MAX_OWN; i++) {
			if (owned[i].slot)
				continue;
			owned[i].dev = st.st_dev;
			owned[i].ino = st.st_ino;
			__atomic_store_n(&owned[i].slot, slot, __ATOMIC_RELEASE);
			errno = saved;
			return fd;
		}
	}
	if (fd >= 0)
		real.close(fd);
	*slot = -1;
	errno = saved;
	return -1;
}

void ownfd_drop(int *slot)
{
	struct own *own = holder(slot);
	int saved = errno;
	if (own && still_ours(own)) {
		real.close(*slot);
		__atomic_store_n(&own->slot, NULL, __ATOMIC_RELEASE);
	}
	*slot = -1;
	errno = saved;
}
bool ownfd_intact(int *slot)
{
	struct own *own = holder(slot);
	if (own && still_ours(own))
		return true;
	*slot = -1;
	return false;
}
bool ownfd_is_ours(int fd)
{
	return fd >= 0 && find(fd) != NULL;
}

bool ownfd_make_room(int fd)
{
	struct own *own = find(fd);
	if (!own)
		return false;
	int saved = errno;
	int moved = real.fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
	__atomic_store_n(own->slot, moved, __ATOMIC_RELAXED);
	if (moved < 0)
		__atomic_store_n(&own->slot, NULL, __ATOMIC_RELEASE); /* lost it: the holder sees -1 */
	errno = saved;
	/* fd itself is closed by the program's dup2, which is about to replace it. */
	return true;
}
/* The lowest of our descriptors in [from, last], or -1. */
static long lowest_own_in(unsigned int from, unsigned int last)
{
	long lowest = -1;
	for (int i = 0; i < MAX_OWN; i++) {
		int *slot = __atomic_load_n(&owned[i].slot, __ATOMIC_ACQUIRE);
		int fd = slot ? __atomic_load_n(slot, __ATOMIC_RELAXED) : -1;
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
