/* The controls for bench/run's rows 1c and 7c: preload libraries whose functions do nothing but call
 * the next definition.
 *
 * passthru.so interposes read() and write(). What dd pays with it preloaded is the floor of any
 * interposition (one extra indirect jump per call), and a check on the noise: it should read 1.00.
 *
 * askclose.so (built with -DASK_AT_CLOSE) interposes accept() and close() too, and its close() first
 * asks the kernel what the lingering close must ask after a finished exchange (bench/ask.h; connloop's
 * answer-ask asks it from inside the program: row 7b). What row 7's server pays with it preloaded is
 * the floor of any preload that makes that decision: the interposition of the four calls a
 * connection makes, and the question. */
#include <dlfcn.h>
#include <unistd.h>

static ssize_t (*next_read)(int, void *, size_t);
static ssize_t (*next_write)(int, const void *, size_t);

ssize_t read(int fd, void *buf, size_t n)
{
	return next_read(fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	return next_write(fd, buf, n);
}

#ifdef ASK_AT_CLOSE
#include "ask.h"

#include <errno.h>

static int (*next_accept)(int, struct sockaddr *, socklen_t *);
static int (*next_close)(int);

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return next_accept(fd, addr, len);
}

int close(int fd)
{
	int saved = errno;
	ask_what_a_close_asks(fd); /* on every descriptor: the library asks only on a tracked socket */
	errno = saved;
	return next_close(fd);
}
#endif

__attribute__((constructor)) static void passthru_load(void)
{
	next_read = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	next_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
#ifdef ASK_AT_CLOSE
	next_accept = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
	next_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
#endif
}
