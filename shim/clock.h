/* The library's own clock: the kernel's, not whatever clock_gettime another preload provides.
 *
 * A preload such as libfaketime replaces clock_gettime, epoll_wait and nanosleep for the whole
 * process. With its clock frozen the guard would never see a pause and a lingering close would never
 * reach its limit; with its clock slowed, every wait of ours would stretch. So the library reads the
 * clock through the kernel's vDSO, found at load in the vDSO's own symbol table (no libc symbol that
 * anyone could interpose), and waits and sleeps with system calls it makes itself.
 *
 * Until clock_resolve() has run (a hook called from another library's constructor), and where the
 * vDSO or its clock_gettime is missing, a system call made here stands in: the clock is never
 * anyone else's, only slower to read. */
#pragma once
#include <stdint.h>
#include <sys/epoll.h>
#include <time.h>

typedef int (*clock_reader)(clockid_t, struct timespec *);

/* The vDSO's clock_gettime once resolved, the system call before. Public for the inline readers. */
extern clock_reader clock_kernel_gettime;

/* Reads the kernel's clock id (CLOCK_REALTIME, CLOCK_MONOTONIC_COARSE, ...). A bare call through a
 * pointer: the write path reads the clock on every write to a tracked socket. */
static inline void clock_read(clockid_t id, struct timespec *ts)
{
	__atomic_load_n(&clock_kernel_gettime, __ATOMIC_RELAXED)(id, ts);
}

/* Monotonic milliseconds (the coarse clock: a few ms per tick, cheap), wrapping every 49 days:
 * compare by subtraction. */
static inline uint32_t clock_now_ms(void)
{
	struct timespec ts;
	clock_read(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)ts.tv_sec * 1000u + (uint32_t)(ts.tv_nsec / 1000000);
}

/* A system call made here, as syscall() does it (-1 and errno on failure), where no preload can
 * interpose it: the stand-in when libc's syscall() cannot be found. */
long clock_kernel_syscall(long n, long a, long b, long c, long d, long e, long f);

/* Finds the vDSO's clock_gettime; called once from the library's constructor. */
void clock_resolve(void);

/* epoll_wait, as the kernel does it: no other preload shortens or stretches the timeout. */
int clock_epoll_wait(int epfd, struct epoll_event *events, int max_events, int timeout_ms);

/* Sleeps for ms milliseconds of the kernel's monotonic clock (less if a signal interrupts). */
void clock_sleep_ms(unsigned int ms);
