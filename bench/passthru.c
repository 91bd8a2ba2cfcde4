/* The control for bench/run's pass-through row: a preload library whose read() and write() do
 * nothing but call the next definition. What dd pays with it preloaded is the floor of any
 * interposition (one extra indirect jump per call), and a check on the noise: it should read 1.00. */
#include <dlfcn.h>
#include <unistd.h>

static ssize_t (*next_read)(int, void *, size_t);
static ssize_t (*next_write)(int, const void *, size_t);

__attribute__((constructor)) static void passthru_load(void)
{
	next_read = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	next_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
}

ssize_t read(int fd, void *buf, size_t n)
{
	return next_read(fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	return next_write(fd, buf, n);
}
