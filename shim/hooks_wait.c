/* The calls a program waits in: poll, select, epoll_wait, the sleeps, and their kin. A close that
 * lingered while no drain thread ran left its socket waiting for one (linger.h); a program's event
 * loop comes back here next, outside any signal handler in practice, and here the thread starts.
 * For everything else, these hooks pass straight on: one load and a jump. */
#include "libc_names.h" /* first */

#include "linger.h"
#include "real.h"

#define WAIT_HOOK(type, name, params, args)                                                            \
	INTERPOSED type name params                                                                   \
	{                                                                                             \
		linger_start_wanted();                                                                \
		return NEXT(name) args;                                                               \
	}

WAIT_HOOK(int, poll, (struct pollfd *fds, nfds_t n, int timeout), (fds, n, timeout))
WAIT_HOOK(int, ppoll, (struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask),
	  (fds, n, timeout, mask))
WAIT_HOOK(int, select, (int n, fd_set *readable, fd_set *writable, fd_set *failed, struct timeval *timeout),
	  (n, readable, writable, failed, timeout))
WAIT_HOOK(int, pselect,
	  (int n, fd_set *readable, fd_set *writable, fd_set *failed, const struct timespec *timeout,
	   const sigset_t *mask),
	  (n, readable, writable, failed, timeout, mask))
WAIT_HOOK(int, epoll_wait, (int ep, struct epoll_event *events, int max, int timeout), (ep, events, max, timeout))
WAIT_HOOK(int, epoll_pwait, (int ep, struct epoll_event *events, int max, int timeout, const sigset_t *mask),
	  (ep, events, max, timeout, mask))
WAIT_HOOK(int, nanosleep, (const struct timespec *duration, struct timespec *left), (duration, left))
WAIT_HOOK(int, clock_nanosleep,
	  (clockid_t clock, int flags, const struct timespec *duration, struct timespec *left),
	  (clock, flags, duration, left))
/* glibc's sleep() and usleep() call its own nanosleep, not ours. */
WAIT_HOOK(unsigned int, sleep, (unsigned int seconds), (seconds))
WAIT_HOOK(int, usleep, (useconds_t microseconds), (microseconds))

#ifdef __GLIBC__
/* What poll() and ppoll() become under _FORTIFY_SOURCE; glibc's call its own poll, not ours. */
WAIT_HOOK(int, __poll_chk, (struct pollfd *fds, nfds_t n, int timeout, size_t fds_len), (fds, n, timeout, fds_len))
WAIT_HOOK(int, __ppoll_chk,
	  (struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask, size_t fds_len),
	  (fds, n, timeout, mask, fds_len))
#endif
