/* The calls a program waits in: poll, select, epoll_wait, the sleeps, and their kin. A close that lingered while
 * no drain thread ran left its socket waiting for one (linger.h); a program's event loop comes back
 * here next, outside any signal handler in practice, and here the thread starts. For everything
 * else, these hooks pass straight on: one load and a jump. */
#include "linger.h"
#include "real.h"

INTERPOSED int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	linger_start_wanted();
	return NEXT(poll)(fds, n, timeout);
}

INTERPOSED int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask)
{
	linger_start_wanted();
	return NEXT(ppoll)(fds, n, timeout, mask);
}

INTERPOSED int select(int n, fd_set *readable, fd_set *writable, fd_set *failed, struct timeval *timeout)
{
	linger_start_wanted();
	return NEXT(select)(n, readable, writable, failed, timeout);
}

INTERPOSED int pselect(int n, fd_set *readable, fd_set *writable, fd_set *failed, const struct timespec *timeout,
		       const sigset_t *mask)
{
	linger_start_wanted();
	return NEXT(pselect)(n, readable, writable, failed, timeout, mask);
}

INTERPOSED int epoll_wait(int ep, struct epoll_event *events, int max, int timeout)
{
	linger_start_wanted();
	return NEXT(epoll_wait)(ep, events, max, timeout);
}

INTERPOSED int epoll_pwait(int ep, struct epoll_event *events, int max, int timeout, const sigset_t *mask)
{
	linger_start_wanted();
	return NEXT(epoll_pwait)(ep, events, max, timeout, mask);
}

INTERPOSED int nanosleep(const struct timespec *duration, struct timespec *left)
{
	linger_start_wanted();
	return NEXT(nanosleep)(duration, left);
}

INTERPOSED int clock_nanosleep(clockid_t clock, int flags, const struct timespec *duration, struct timespec *left)
{
	linger_start_wanted();
	return NEXT(clock_nanosleep)(clock, flags, duration, left);
}

/* glibc's sleep() and usleep() call its own nanosleep, not ours. */
INTERPOSED unsigned int sleep(unsigned int seconds)
{
	linger_start_wanted();
	return NEXT(sleep)(seconds);
}

INTERPOSED int usleep(useconds_t microseconds)
{
	linger_start_wanted();
	return NEXT(usleep)(microseconds);
}

#ifdef __GLIBC__
/* What poll() and ppoll() become under _FORTIFY_SOURCE; glibc's call its own poll, not ours. */
INTERPOSED int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fds_len)
{
	linger_start_wanted();
	return NEXT(__poll_chk)(fds, n, timeout, fds_len);
}

INTERPOSED int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask,
			   size_t fds_len)
{
	linger_start_wanted();
	return NEXT(__ppoll_chk)(fds, n, timeout, mask, fds_len);
}
#endif
