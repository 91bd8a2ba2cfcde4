#include "real.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Raw-syscall stand-ins, used until real_resolve() has run (and for anything dlsym cannot find). */
static int sys_socket(int d, int t, int p) { return syscall(SYS_socket, d, t, p); }
static int sys_connect(int fd, const_sockaddr_arg a, socklen_t l) { return syscall(SYS_connect, fd, a, l); }
static int sys_accept4(int fd, sockaddr_arg a, socklen_t *l, int f) { return syscall(SYS_accept4, fd, a, l, f); }
static int sys_accept(int fd, sockaddr_arg a, socklen_t *l) { return sys_accept4(fd, a, l, 0); }
static int sys_listen(int fd, int backlog) { return syscall(SYS_listen, fd, backlog); }
static int sys_close(int fd) { return syscall(SYS_close, fd); }
static int sys_shutdown(int fd, int how) { return syscall(SYS_shutdown, fd, how); }
static int sys_setsockopt(int fd, int level, int name, const void *v, socklen_t l)
{
	return syscall(SYS_setsockopt, fd, level, name, v, l);
}
static int sys_dup(int fd) { return syscall(SYS_dup, fd); }
static int sys_dup3(int old, int new, int f) { return syscall(SYS_dup3, old, new, f); }
static ssize_t sys_read(int fd, void *b, size_t n) { return syscall(SYS_read, fd, b, n); }
static ssize_t sys_readv(int fd, const struct iovec *v, int n) { return syscall(SYS_readv, fd, v, n); }
static ssize_t sys_recvfrom(int fd, void *b, size_t n, int f, sockaddr_arg a, socklen_t *l)
{
	return syscall(SYS_recvfrom, fd, b, n, f, a, l);
}
static ssize_t sys_recv(int fd, void *b, size_t n, int f) { return sys_recvfrom(fd, b, n, f, NULL, NULL); }
static ssize_t sys_recvmsg(int fd, struct msghdr *m, int f) { return syscall(SYS_recvmsg, fd, m, f); }
static ssize_t sys_write(int fd, const void *b, size_t n) { return syscall(SYS_write, fd, b, n); }
static ssize_t sys_writev(int fd, const struct iovec *v, int n) { return syscall(SYS_writev, fd, v, n); }
static ssize_t sys_sendto(int fd, const void *b, size_t n, int f, const_sockaddr_arg a, socklen_t l)
{
	return syscall(SYS_sendto, fd, b, n, f, a, l);
}
static ssize_t sys_send(int fd, const void *b, size_t n, int f) { return sys_sendto(fd, b, n, f, NULL, 0); }
static ssize_t sys_sendmsg(int fd, const struct msghdr *m, int f) { return syscall(SYS_sendmsg, fd, m, f); }
static int sys_sendmmsg(int fd, struct mmsghdr *m, unsigned int n, sendmmsg_flags f) { return syscall(SYS_sendmmsg, fd, m, n, f); }
static ssize_t sys_sendfile(int out, int in, off_t *off, size_t n) { return syscall(SYS_sendfile, out, in, off, n); }
static ssize_t sys_splice(int in, splice_off *in_off, int out, splice_off *out_off, size_t n, unsigned int f)
{
	return syscall(SYS_splice, in, in_off, out, out_off, n, f);
}

static int sys_epoll_ctl(int ep, int op, int fd, struct epoll_event *e) { return syscall(SYS_epoll_ctl, ep, op, fd, e); }
static int sys_dup2(int old, int new)
{
	if (old == new) /* dup3 refuses equal numbers; dup2 checks validity and returns the number */
		return syscall(SYS_fcntl, old, F_GETFD) < 0 ? -1 : new;
	return sys_dup3(old, new, 0);
}

static int sys_close_range(unsigned int first, unsigned int last, int flags)
{
#ifdef SYS_close_range
	return syscall(SYS_close_range, first, last, flags);
#else
	(void)first, (void)last, (void)flags;
	errno = ENOSYS;
	return -1;
#endif
}

/* Every fcntl argument is an int, a long or a pointer: all travel in one register-sized slot. */
static int sys_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	uintptr_t arg = va_arg(ap, uintptr_t);
	va_end(ap);
	return syscall(SYS_fcntl, fd, cmd, arg);
}

struct real_libc real = {
	.socket = sys_socket,
	.connect = sys_connect,
	.accept = sys_accept,
	.accept4 = sys_accept4,
	.listen = sys_listen,
	.close = sys_close,
	.close_range = sys_close_range,
	.shutdown = sys_shutdown,
	.setsockopt = sys_setsockopt,
	.dup = sys_dup,
	.dup2 = sys_dup2,
	.dup3 = sys_dup3,
	.fcntl = sys_fcntl,
	.fcntl64 = sys_fcntl,
	.epoll_ctl = sys_epoll_ctl,
	.read = sys_read,
	.readv = sys_readv,
	.recv = sys_recv,
	.recvfrom = sys_recvfrom,
	.recvmsg = sys_recvmsg,
	.write = sys_write,
	.writev = sys_writev,
	.send = sys_send,
	.sendto = sys_sendto,
	.sendmsg = sys_sendmsg,
	.sendmmsg = sys_sendmmsg,
	.sendfile = sys_sendfile,
	.splice = sys_splice,
};

/* Replaces *slot with the next definition of name, if there is one. Pointer stores are single
 * machine words: a thread calling through the slot meanwhile sees either the stand-in or libc's. */
static void swap_in(void **slot, const char *name)
{
	void *next = dlsym(RTLD_NEXT, name);
	if (next)
		__atomic_store_n(slot, next, __ATOMIC_RELEASE);
}

void *real_lookup(void **slot, const char *name)
{
	void *fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (!fn) {
		swap_in(slot, name);
		fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	}
	return fn;
}

#define SWAP_IN(name) swap_in((void **)&real.name, #name)

void real_resolve(void)
{
	SWAP_IN(socket);
	SWAP_IN(connect);
	SWAP_IN(accept);
	SWAP_IN(accept4);
	SWAP_IN(listen);
	SWAP_IN(close);
	SWAP_IN(close_range);
	SWAP_IN(shutdown);
	SWAP_IN(setsockopt);
	SWAP_IN(dup);
	SWAP_IN(dup2);
	SWAP_IN(dup3);
	SWAP_IN(fcntl);
	SWAP_IN(fcntl64);
	SWAP_IN(epoll_ctl);
	SWAP_IN(read);
	SWAP_IN(readv);
	SWAP_IN(recv);
	SWAP_IN(recvfrom);
	SWAP_IN(recvmsg);
	SWAP_IN(write);
	SWAP_IN(writev);
	SWAP_IN(send);
	SWAP_IN(sendto);
	SWAP_IN(sendmsg);
	SWAP_IN(sendmmsg);
	SWAP_IN(sendfile);
	SWAP_IN(splice);
	SWAP_IN(syscall);
	SWAP_IN(pthread_create);
	SWAP_IN(prctl);
	SWAP_IN(fork);
	SWAP_IN(_Fork);
	SWAP_IN(clone);
	SWAP_IN(posix_spawn);
	SWAP_IN(posix_spawnp);
	SWAP_IN(system);
	SWAP_IN(popen);
	SWAP_IN(fdopen);
	SWAP_IN(fclose);
	SWAP_IN(freopen);
#ifdef __GLIBC__
	SWAP_IN(freopen64);
#endif
	SWAP_IN(fflush);
	SWAP_IN(fwrite);
	SWAP_IN(fputs);
	SWAP_IN(fputc);
	SWAP_IN(putc);
	SWAP_IN(puts);
	SWAP_IN(putchar);
	SWAP_IN(vfprintf);
	SWAP_IN(vdprintf);
#ifdef __GLIBC__
	SWAP_IN(__vfprintf_chk);
	SWAP_IN(__vdprintf_chk);
	SWAP_IN(fflush_unlocked);
	SWAP_IN(fwrite_unlocked);
	SWAP_IN(fputs_unlocked);
	SWAP_IN(fputc_unlocked);
	SWAP_IN(putc_unlocked);
	SWAP_IN(putchar_unlocked);
#endif
	SWAP_IN(poll);
	SWAP_IN(ppoll);
	SWAP_IN(select);
	SWAP_IN(pselect);
	SWAP_IN(epoll_wait);
	SWAP_IN(epoll_pwait);
	SWAP_IN(nanosleep);
	SWAP_IN(clock_nanosleep);
	SWAP_IN(sleep);
	SWAP_IN(usleep);
#ifdef __GLIBC__
	SWAP_IN(__poll_chk);
	SWAP_IN(__ppoll_chk);
#endif
	SWAP_IN(vfork);
}
