/* The control for bench/run's row 7: a preload library whose accept(), read(), write() and close() do
 * nothing but call the next definition, except that close() first asks the kernel what the
 * lingering close must ask after a finished exchange (bench/connloop.c's answer-ask does the same
 * from inside the program: row 7b). What row 7's server pays with it preloaded is the floor of any
 * preload that makes that decision: the interposition of the four calls, and the question. */
#include "ask.h"

#include <dlfcn.h>
#include <errno.h>
#include <unistd.h>

static int (*next_accept)(int, struct sockaddr *, socklen_t *);
static ssize_t (*next_read)(int, void *, size_t);
static ssize_t (*next_write)(int, const void *, size_t);
static int (*next_close)(int);

__attribute__((constructor)) static void askclose_load(void)
{
	next_accept = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
	next_read = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	next_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	next_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return next_accept(fd, addr, len);
}

ssize_t read(int fd, void *buf, size_t n)
{
	return next_read(fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	return next_write(fd, buf, n);
}

int close(int fd)
{
	int saved = errno;
	ask_what_a_close_asks(fd); /* on every descriptor: the library asks only on a tracked socket */
	errno = saved;
	return next_close(fd);
}
