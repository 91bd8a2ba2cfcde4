/* Hooks that create, copy, hand on and destroy descriptors: they keep the descriptor table true.
 * Each calls the real function and records what happened; errno is as libc left it. In a vfork child
 * each passes straight through: the table is the parent's, the descriptor numbers are the child's. */
#include "backlog.h"
#include "epollset.h"
#include "fdstate.h"
#include "hooks.h"
#include "init.h"
#include "layout.h"
#include "linger.h"
#include "ownfd.h"
#include "process.h"
#include "real.h"
#include "vfork.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static bool is_tcp(int domain, int type, int protocol)
{
	return (domain == AF_INET || domain == AF_INET6) &&
	       (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP);
}

/* The library's own descriptors, and its lingering copies of sockets, look unused to the program. */
static bool refuse_own(int fd)
{
	if (config.confined || (!ownfd_is_ours(fd) && !linger_holds(fd))) /* each may fstat */
		return false;
	errno = EBADF;
	return true;
}

INTERPOSED int socket(int domain, int type, int protocol)
{
	if (in_vfork_child())
		return real.socket(domain, type, protocol);
	int fd = real.socket(domain, type, protocol);
	if (fd >= 0 && is_tcp(domain, type, protocol))
		fdstate_track(fd, FD_CREATED);
	else if (fd >= 0)
		fdstate_forget(fd); /* the number may carry a stale entry from a socket glibc closed */
	return fd;
}

INTERPOSED int connect(int fd, const_sockaddr_arg addr, socklen_t len)
{
	if (in_vfork_child())
		return real.connect(fd, addr, len);
	linger_start_wanted();
	int rc = real.connect(fd, addr, len);
	if (rc == 0 || errno == EINPROGRESS || errno == EINTR)
		hooks_note_connected(fd);
	return rc;
}

void hooks_note_connected(int fd)
{
	if (!fdstate_is_tracked(fd))
		return;
	fdstate_set_origin(fd, FD_CONNECTED);
	linger_prepare();
}

/* The listener's entry is not confirmed first: that fstat was a tenth of an accept's cost (redis,
 * docs/PERFORMANCE.md). An entry goes stale only if its number was both closed and reused where no
 * hook sees it (fclose, then a raw socket system call): then the new entry may name a UNIX socket,
 * which every intervention turns away, as TCP_INFO fails on it, before it acts. */
static HOT int note_accepted(int listener, int fd)
{
	bool queue_check_due;
	if (fd >= 0 && fdstate_track_accepted(fd, listener, &queue_check_due)) {
		if (queue_check_due)
			backlog_check_queue(listener);
		linger_prepare();
	} else if (fd >= 0)
		fdstate_forget(fd);
	return fd;
}

INTERPOSED HOT int accept(int fd, sockaddr_arg addr, socklen_t *len)
{
	if (in_vfork_child())
		return real.accept(fd, addr, len);
	linger_start_wanted(); /* before an accept that may block */
	return note_accepted(fd, real.accept(fd, addr, len));
}

INTERPOSED int accept4(int fd, sockaddr_arg addr, socklen_t *len, int flags)
{
	if (in_vfork_child())
		return real.accept4(fd, addr, len, flags);
	linger_start_wanted(); /* before an accept that may block */
	return note_accepted(fd, real.accept4(fd, addr, len, flags));
}

INTERPOSED int listen(int fd, int backlog)
{
	if (in_vfork_child() || config.confined)
		return real.listen(fd, backlog);
	/* A stale entry (the socket closed behind our back, its number reused unseen) must not make
	 * the connections accepted here look like TCP. */
	if (fdstate_is_tracked(fd) && !fdstate_still_same(fd))
		fdstate_forget(fd);
	struct listen_plan plan = backlog_plan(fd, backlog);
	int rc = real.listen(fd, plan.asked);
	if (rc == 0) {
		fdstate_set_origin(fd, FD_LISTENING);
		backlog_report(fd, &plan);
	}
	return rc;
}

INTERPOSED int shutdown(int fd, int how)
{
	if (in_vfork_child())
		return real.shutdown(fd, how);
	bool gives_up = linger_gives_up_at_shutdown(fd, how); /* asked before our FIN goes out */
	int rc = real.shutdown(fd, how);
	if (rc == 0 && gives_up)
		fdstate_note_gave_up(fd);
	if (rc == 0)
		fdstate_note_shutdown(fd, how);
	return rc;
}

/* SO_LINGER, so that a close need not ask whether the program chose its close itself (linger.c). */
INTERPOSED int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
	int rc = real.setsockopt(fd, level, name, value, len);
	if (rc == 0 && level == SOL_SOCKET && name == SO_LINGER && len >= sizeof(struct linger) &&
	    !in_vfork_child()) {
		struct linger option;
		memcpy(&option, value, sizeof(option)); /* the program's buffer need not be aligned */
		fdstate_note_linger_option(fd, option.l_onoff != 0);
	}
	return rc;
}

/* close() of a number the descriptor table knows (e): a socket of the program's, or one of the
 * library's lingering copies. Out of line, as the data path's tracked hooks are (hooks_io.c): the
 * close of a file or a pipe then runs without a frame. */
static HOT __attribute__((noinline)) int close_tracked(int fd, struct fd_entry *e)
{
	if (fdstate_origin(e) != FD_LINGERING) { /* a socket of the program's (see ownfd.c) */
		if (config.linger != MODE_OFF && linger_close(fd, e)) /* linger_watches(), e in hand */
			return 0;
	} else if (refuse_own(fd))
		return -1;
	else
		epollset_note_closed(fd);
	fdstate_forget_entry(e); /* before the number is free for another thread to reuse */
	return real.close(fd);
}

INTERPOSED HOT int close(int fd)
{
	/* A lingering close in a vfork child would take the socket out of epoll instances the parent
	 * shares, and hand the parent's drain thread a number of the child's. */
	if (in_vfork_child())
		return real.close(fd);
	struct fd_entry *e = fdstate_entry(fd);
	if (e)
		return close_tracked(fd, e);
	if (!config.confined && ownfd_is_ours(fd)) { /* unknown to the table: not a lingering copy */
		errno = EBADF;
		return -1;
	}
	epollset_note_closed(fd);
	return real.close(fd);
}

static int close_range_real(unsigned int first, unsigned int last, int flags)
{
	return real.close_range(first, last, flags);
}

INTERPOSED int close_range(unsigned int first, unsigned int last, int flags)
{
	/* closes nothing, or the kernel's EINVAL; or a vfork child's own copies (Python's subprocess) */
	if ((flags & CLOSE_RANGE_CLOEXEC) || first > last || in_vfork_child())
		return real.close_range(first, last, flags);
	fdstate_forget_range(first, last);
	return ownfd_close_range_around(first, last, flags, close_range_real);
}

static int note_copy(int oldfd, int newfd)
{
	if (newfd >= 0) {
		fdstate_copy(oldfd, newfd);
		epollset_note_copy(oldfd, newfd);
	}
	return newfd;
}

/* After dup2/dup3 onto newfd. A failed call leaves newfd as it was, except that one of ours that
 * stood there has moved away already: close the copy left behind, so the number is free as the
 * program believes. */
static int note_copy_into(int oldfd, int newfd, bool vacated, int rc)
{
	if (rc < 0 && vacated) {
		int saved = errno;
		real.close(newfd);
		errno = saved;
	}
	return note_copy(oldfd, rc);
}

INTERPOSED int dup(int fd)
{
	if (in_vfork_child())
		return real.dup(fd);
	return refuse_own(fd) ? -1 : note_copy(fd, real.dup(fd));
}

/* dup2() and dup3() onto a socket's last descriptor close it, as close() does: so they linger alike.
 * Not when the call is bound to fail (a bad oldfd or flags, or dup3's oldfd == newfd): then the socket
 * must stay exactly as it was, in the program's epoll sets too. */
struct dup_call {
	int oldfd, newfd, flags;
	bool is_dup3;
};

static int dup_release(void *call)
{
	const struct dup_call *c = call;
	return c->is_dup3 ? real.dup3(c->oldfd, c->newfd, c->flags) : real.dup2(c->oldfd, c->newfd);
}

static int dup_onto(struct dup_call *c)
{
	if (c->oldfd == c->newfd || (c->flags & ~O_CLOEXEC) || !linger_watches(c->newfd))
		return dup_release(c);
	int saved = errno;
	bool valid = real.fcntl(c->oldfd, F_GETFD) >= 0;
	errno = saved;
	return valid ? linger_drop(c->newfd, dup_release, c) : dup_release(c);
}

INTERPOSED int dup2(int oldfd, int newfd)
{
	if (in_vfork_child())
		return real.dup2(oldfd, newfd);
	if (refuse_own(oldfd))
		return -1;
	if (oldfd == newfd)
		return real.dup2(oldfd, newfd);
	bool vacated = ownfd_make_room(newfd);
	return note_copy_into(oldfd, newfd, vacated, dup_onto(&(struct dup_call){oldfd, newfd, 0, false}));
}

INTERPOSED int dup3(int oldfd, int newfd, int flags)
{
	if (in_vfork_child())
		return real.dup3(oldfd, newfd, flags);
	if (refuse_own(oldfd))
		return -1;
	bool vacated = oldfd != newfd && ownfd_make_room(newfd);
	return note_copy_into(oldfd, newfd, vacated, dup_onto(&(struct dup_call){oldfd, newfd, flags, true}));
}

/* Every fcntl argument is an int, a long or a pointer: all travel in one register-sized slot. */
static int fcntl_with(int (*fcntl_real)(int, int, ...), int fd, int cmd, uintptr_t arg)
{
	if ((cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC) || in_vfork_child())
		return fcntl_real(fd, cmd, arg);
	return refuse_own(fd) ? -1 : note_copy(fd, fcntl_real(fd, cmd, arg));
}

INTERPOSED int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	uintptr_t arg = va_arg(ap, uintptr_t);
	va_end(ap);
	return fcntl_with(real.fcntl, fd, cmd, arg);
}

#ifdef __GLIBC__
/* glibc >= 2.28 routes fcntl to fcntl64 in programs built with 64-bit file offsets. */
INTERPOSED int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	uintptr_t arg = va_arg(ap, uintptr_t);
	va_end(ap);
	return fcntl_with(real.fcntl64, fd, cmd, arg);
}
#endif

/* An epoll instance is learnt when the program first registers something in it, so that instances
 * inherited, received or created before the library loaded are known too. The socket is marked
 * before the call: another thread may get its first event, and close it, before this one returns
 * (epollset.h). Also in a vfork child, whose registrations land in instances its parent shares (the
 * mark only writes the parent's table; a wrong one costs a removal that finds nothing). */
INTERPOSED int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
	if (op == EPOLL_CTL_ADD)
		fdstate_note_in_epoll(fd);
	int rc = real.epoll_ctl(epfd, op, fd, event);
	if (rc == 0 && op == EPOLL_CTL_ADD && !in_vfork_child())
		epollset_note_used(epfd);
	return rc;
}

/* Children: fork() is seen through pthread_atfork (see init.c), vfork() in vfork.c; these run no
 * fork handlers. In a vfork child, the grandchild's sockets are the child's: nothing to note here. */

/* The child's pid, so that a lingering close need not look into it (process.h). */
INTERPOSED pid_t fork(void)
{
	if (!real_lookup((void **)&real.fork, "fork")) {
		errno = ENOSYS;
		return -1;
	}
	pid_t pid = real.fork();
	if (pid > 0 && !in_vfork_child())
		process_note_child(pid);
	return pid;
}

/* _Fork() and clone() run no fork handlers: their hooks do what the handlers would have, so that the
 * child's sockets count as shared on both sides and the child's own closes linger as after fork().
 * (A close that is about to linger also looks in /proc for children made where no hook runs: see
 * process.h.) */
INTERPOSED pid_t _Fork(void)
{
	if (!real_lookup((void **)&real._Fork, "_Fork")) {
		errno = ENOSYS;
		return -1;
	}
	pid_t pid = real._Fork();
	if (pid == 0)
		tcprare_after_fork_in_child();
	else if (pid > 0 && !in_vfork_child()) {
		tcprare_after_fork_in_parent();
		process_note_child(pid);
	}
	return pid;
}

/* The child of clone() without CLONE_VM starts in fn on a copy of the parent's memory: this frame's
 * copy of fn and arg is there too. */
struct clone_start {
	int (*fn)(void *);
	void *arg;
};

static int clone_child(void *start)
{
	tcprare_after_fork_in_child();
	return ((struct clone_start *)start)->fn(((struct clone_start *)start)->arg);
}

/* A program's new thread may close sockets while the others wait where no hook sees them: the drain
 * thread starts now if the program has had a TCP socket (linger.h). */
INTERPOSED int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg)
{
	int (*create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) = NEXT(pthread_create);
	if (!create)
		return EAGAIN;
	int rc = create(thread, attr, start, arg);
	if (rc == 0 && !in_vfork_child() && !config.confined)
		linger_note_program_thread();
	return rc;
}

INTERPOSED int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	va_list ap; /* parent_tid, tls, child_tid: passed on whether flags use them or not, as libc does */
	va_start(ap, arg);
	void *parent_tid = va_arg(ap, void *), *tls = va_arg(ap, void *), *child_tid = va_arg(ap, void *);
	va_end(ap);
	if (!real_lookup((void **)&real.clone, "clone")) {
		errno = ENOSYS;
		return -1;
	}
	/* CLONE_FILES: one descriptor table, as threads share it. CLONE_VM without it (a spawn of its
	 * own): the child must touch nothing of ours, but its table holds our sockets. */
	bool own_table = !(flags & CLONE_FILES), own_memory = !(flags & CLONE_VM);
	if (!own_table && !in_vfork_child())
		linger_note_threads(); /* a thread glibc does not count (see linger_single_threaded) */
	if (!own_table || in_vfork_child())
		return real.clone(fn, stack, flags, arg, parent_tid, tls, child_tid);
	struct clone_start start = {fn, arg};
	tcprare_after_fork_in_parent(); /* before: the child may run, and exec, before we return */
	int pid = own_memory ? real.clone(clone_child, stack, flags, &start, parent_tid, tls, child_tid)
			     : real.clone(fn, stack, flags, arg, parent_tid, tls, child_tid);
	if (pid > 0)
		process_note_child(pid);
	return pid;
}

/* After a spawn: its child, as after fork(). */
static int note_spawned(int rc, const pid_t *pid)
{
	if (rc == 0 && pid && !in_vfork_child())
		process_note_child(*pid);
	return rc;
}

INTERPOSED int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	if (!in_vfork_child())
		fdstate_note_spawn(actions != NULL);
	void *fn = real_lookup((void **)&real.posix_spawn, "posix_spawn");
	return fn ? note_spawned(real.posix_spawn(pid, path, actions, attr, argv, envp), pid) : ENOSYS;
}

INTERPOSED int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
			    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	if (!in_vfork_child())
		fdstate_note_spawn(actions != NULL);
	void *fn = real_lookup((void **)&real.posix_spawnp, "posix_spawnp");
	return fn ? note_spawned(real.posix_spawnp(pid, file, actions, attr, argv, envp), pid) : ENOSYS;
}

/* glibc's system() and popen() spawn through an internal posix_spawn that no hook sees. */
INTERPOSED int system(const char *command)
{
	if (!in_vfork_child())
		fdstate_note_spawn(false);
	if (!real_lookup((void **)&real.system, "system")) {
		errno = ENOSYS;
		return -1;
	}
	return real.system(command);
}

INTERPOSED FILE *popen(const char *command, const char *mode)
{
	if (!in_vfork_child())
		fdstate_note_spawn(false);
	if (!real_lookup((void **)&real.popen, "popen")) {
		errno = ENOSYS;
		return NULL;
	}
	return real.popen(command, mode);
}
