#include "epollset.h"
#include "high_water.h"
#include "real.h"

#include <errno.h>
#include <stddef.h>
#include <sys/epoll.h>

#define MAX_EPOLL 256 /* nginx has one per worker process; libuv and most event loops one per thread */

static int epoll_fds[MAX_EPOLL]; /* descriptor + 1; 0: free */
unsigned int epollset_used;      /* slots [0, epollset_used) may be taken */
static bool overflowed;          /* an instance was not remembered */

/* No identity check is needed: removing our socket from an instance that has since become another
 * epoll instance is still right, and from anything else only fails with EINVAL. */

static bool known(int fd)
{
	unsigned int n = __atomic_load_n(&epollset_used, __ATOMIC_ACQUIRE);
	for (unsigned int i = 0; i < n; i++)
		if (__atomic_load_n(&epoll_fds[i], __ATOMIC_RELAXED) == fd + 1)
			return true;
	return false;
}

void epollset_note_used(int epfd)
{
	if (epfd < 0 || known(epfd))
		return;
	for (unsigned int i = 0; i < MAX_EPOLL; i++) {
		int expected = 0;
		if (__atomic_compare_exchange_n(&epoll_fds[i], &expected, epfd + 1, false, __ATOMIC_RELEASE,
						__ATOMIC_RELAXED)) {
			high_water_raise(&epollset_used, i + 1);
			return;
		}
	}
	__atomic_store_n(&overflowed, true, __ATOMIC_RELAXED);
}

void epollset_note_copy(int oldfd, int newfd)
{
	if (newfd >= 0 && __atomic_load_n(&epollset_used, __ATOMIC_RELAXED) && known(oldfd))
		epollset_note_used(newfd);
}

void epollset_forget(int fd)
{
	unsigned int n = __atomic_load_n(&epollset_used, __ATOMIC_ACQUIRE);
	for (unsigned int i = 0; i < n; i++) {
		int expected = fd + 1; /* looked at first: most closes are of no instance, and a CAS locks */
		if (__atomic_load_n(&epoll_fds[i], __ATOMIC_RELAXED) == expected)
			__atomic_compare_exchange_n(&epoll_fds[i], &expected, 0, false, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
	}
}

bool epollset_remove_everywhere(int fd)
{
	int saved = errno;
	unsigned int n = __atomic_load_n(&epollset_used, __ATOMIC_ACQUIRE);
	for (unsigned int i = 0; i < n; i++) {
		int epfd = __atomic_load_n(&epoll_fds[i], __ATOMIC_RELAXED) - 1;
		if (epfd >= 0)
			real.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	}
	errno = saved;
	return !__atomic_load_n(&overflowed, __ATOMIC_RELAXED);
}
