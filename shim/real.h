/* The libc functions tcprare interposes, as the next library in the search order provides them.
 *
 * Every pointer starts out as a raw-syscall stand-in, so a hook reached before real_resolve() ran (from
 * another library's constructor, or from inside dlsym itself) works without recursing or blocking.
 * real_resolve() then swaps in the next definitions (libc's, or another preloaded library's). */
#pragma once
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Where glibc's and musl's prototypes differ, the hooks must match the one they are built against. */
#ifdef __GLIBC__
typedef __SOCKADDR_ARG sockaddr_arg;             /* glibc's transparent union under _GNU_SOURCE */
typedef __CONST_SOCKADDR_ARG const_sockaddr_arg;
typedef int sendmmsg_flags;
typedef __off64_t splice_off;
#else
typedef struct sockaddr *sockaddr_arg;
typedef const struct sockaddr *const_sockaddr_arg;
typedef unsigned int sendmmsg_flags;
typedef off_t splice_off;
#endif

/* Exported from the library; everything else is hidden. */
#define INTERPOSED __attribute__((visibility("default")))

struct real_libc {
	int (*socket)(int, int, int);
	int (*connect)(int, const_sockaddr_arg, socklen_t);
	int (*accept)(int, sockaddr_arg, socklen_t *);
	int (*accept4)(int, sockaddr_arg, socklen_t *, int);
	int (*listen)(int, int);
	int (*close)(int);
	int (*close_range)(unsigned int, unsigned int, int);
	int (*shutdown)(int, int);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*fcntl64)(int, int, ...);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, sockaddr_arg, socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*sendto)(int, const void *, size_t, int, const_sockaddr_arg, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	int (*sendmmsg)(int, struct mmsghdr *, unsigned int, sendmmsg_flags);
	ssize_t (*sendfile)(int, int, off_t *, size_t);
	ssize_t (*splice)(int, splice_off *, int, splice_off *, size_t, unsigned int);
	/* No syscall stands in for these; NULL until resolved. */
	long (*syscall)(long, ...);
	int (*pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	int (*prctl)(int, ...);
	pid_t (*fork)(void);
	pid_t (*_Fork)(void);
	int (*clone)(int (*)(void *), void *, int, void *, ...);
	int (*posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			   const posix_spawnattr_t *, char *const[], char *const[]);
	int (*posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			    const posix_spawnattr_t *, char *const[], char *const[]);
	int (*system)(const char *);
	FILE *(*popen)(const char *, const char *);
	FILE *(*fdopen)(int, const char *);
	int (*fclose)(FILE *);
	FILE *(*freopen)(const char *, const char *, FILE *);
#ifdef __GLIBC__ /* musl's stdio.h makes freopen64 a macro for freopen */
	FILE *(*freopen64)(const char *, const char *, FILE *);
#endif
	/* stdio output (hooks_stdio.c) */
	int (*fflush)(FILE *);
	size_t (*fwrite)(const void *, size_t, size_t, FILE *);
	int (*fputs)(const char *, FILE *);
	int (*fputc)(int, FILE *);
	int (*putc)(int, FILE *);
	int (*puts)(const char *);
	int (*putchar)(int);
	int (*vfprintf)(FILE *, const char *, va_list);
	int (*vdprintf)(int, const char *, va_list);
#ifdef __GLIBC__
	int (*__vfprintf_chk)(FILE *, int, const char *, va_list);
	int (*__vdprintf_chk)(int, int, const char *, va_list);
	int (*fflush_unlocked)(FILE *);
	size_t (*fwrite_unlocked)(const void *, size_t, size_t, FILE *);
	int (*fputs_unlocked)(const char *, FILE *);
	int (*fputc_unlocked)(int, FILE *);
	int (*putc_unlocked)(int, FILE *);
	int (*putchar_unlocked)(int);
#endif
	/* the calls a program waits in (hooks_wait.c) */
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
	int (*epoll_wait)(int, struct epoll_event *, int, int);
	int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
	int (*nanosleep)(const struct timespec *, struct timespec *);
	int (*clock_nanosleep)(clockid_t, int, const struct timespec *, struct timespec *);
	unsigned int (*sleep)(unsigned int);
	int (*usleep)(useconds_t);
#ifdef __GLIBC__
	int (*__poll_chk)(struct pollfd *, nfds_t, int, size_t);
	int (*__ppoll_chk)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *, size_t);
#endif
	pid_t (*vfork)(void); /* called only by vfork.c's trampoline, which jumps to it */
};

extern struct real_libc real;

/* Looks up every function with dlsym(RTLD_NEXT); called once from the library's constructor. */
void real_resolve(void);

/* For the spawning functions, which have no syscall stand-in: resolves on first use if needed. */
void *real_lookup(void **slot, const char *name);

/* The next definition of a function that has no syscall stand-in: resolved at start, or here on
 * first use. */
#define NEXT(name)                                                                                 \
	(__atomic_load_n(&real.name, __ATOMIC_ACQUIRE)                                                  \
		 ?: (__typeof__(real.name))real_lookup((void **)&real.name, #name))
