#include "fdstate.h"
#include "config.h"
#include "layout.h"
#include "process.h"
#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct fd_entry *fdstate_pages[FDSTATE_MAX_FD / FDSTATE_PAGE_ENTRIES];
uint32_t fdstate_fork_generation;
static uint64_t sockets_seen;

/* The steps of tracking a new socket, folded into each accept() and socket(): as calls, their frames
 * took 30 of the library's 490 instructions on a short connection (docs/PERFORMANCE.md, row 7). */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* Maps the page for the entries from slot's (mmap, not malloc: hooks such as close() may run in a
 * signal handler); NULL if it cannot. */
static COLD __attribute__((noinline)) struct fd_entry *map_page(struct fd_entry **slot)
{
	int saved = errno; /* ENOMEM: the program's call succeeded all the same */
	struct fd_entry *page = NULL;
	void *fresh = mmap(NULL, FDSTATE_PAGE_ENTRIES * sizeof(struct fd_entry), PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* On failure the CAS loads the page another thread installed first. */
	if (fresh != MAP_FAILED && __atomic_compare_exchange_n(slot, &page, fresh, false, __ATOMIC_ACQ_REL,
							       __ATOMIC_ACQUIRE))
		page = fresh;
	else if (fresh != MAP_FAILED)
		munmap(fresh, FDSTATE_PAGE_ENTRIES * sizeof(struct fd_entry));
	errno = saved;
	return page;
}

/* fd's place in the table, mapping its page if create is set. */
ALWAYS_INLINE struct fd_entry *entry(int fd, bool create)
{
	struct fd_entry *e = fdstate_place(fd);
	if (e || !create || (unsigned int)fd >= FDSTATE_MAX_FD)
		return e;
	struct fd_entry *page = map_page(&fdstate_pages[(unsigned int)fd / FDSTATE_PAGE_ENTRIES]);
	return page ? &page[(unsigned int)fd % FDSTATE_PAGE_ENTRIES] : NULL;
}

static void update_flags(struct fd_entry *e, uint32_t clear, uint32_t set)
{
	uint32_t old = LOAD(e->flags);
	while (!__atomic_compare_exchange_n(&e->flags, &old, (old & ~clear) | set, true, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
}

static uint32_t inode_of(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) ? (uint32_t)st.st_ino : 0;
}

/* Stores an entry; returns whether it did. */
ALWAYS_INLINE bool track(int fd, uint32_t ino, uint32_t flags, uint32_t gen, uint32_t last_write_ms)
{
	struct fd_entry *e = entry(fd, true);
	if (!e || !ino)
		return false;
	STORE(e->ino, 0);
	STORE(e->flags, flags);
	STORE(e->fork_gen, gen);
	STORE(e->last_write_ms, last_write_ms);
	STORE(e->log_ms, 0);
	STORE(e->log_suppressed, 0);
	STORE(e->queue_full_seen, 0);
	STORE(e->queue_check_ms, 0);
	STORE(e->bytes_read, 0);
	uint32_t generation = LOAD(e->generation) + 1;
	__atomic_store_n(&e->writing, (uint64_t)generation << 32, __ATOMIC_RELAXED);
	STORE(e->generation, generation);
	__atomic_store_n(&e->ino, ino, __ATOMIC_RELEASE);
	return true;
}

/* The identity of a socket made here, recorded by the first check that needs it (fdstate_identity):
 * an fstat per connection is a tenth of a short-lived server's cost where system calls are dear. */
#define INODE_UNKNOWN UINT32_MAX

/* A socket new to this process (not a copy of one it has): counted for the exit summary. The guard's
 * idle clock starts at last_write_ms. */
ALWAYS_INLINE void track_new(int fd, uint32_t ino, uint32_t flags, uint32_t last_write_ms)
{
	if (track(fd, ino, flags, LOAD(fdstate_fork_generation), last_write_ms))
		__atomic_add_fetch(&sockets_seen, 1, __ATOMIC_RELAXED);
}

uint64_t fdstate_sockets_seen(void)
{
	return __atomic_load_n(&sockets_seen, __ATOMIC_RELAXED);
}

void fdstate_track(int fd, enum fd_origin origin)
{
	track_new(fd, INODE_UNKNOWN, origin, fdstate_now_ms());
}

HOT bool fdstate_track_accepted(int fd, int listener, bool *queue_check_due)
{
	struct fd_entry *l = fdstate_entry(listener);
	if (!l)
		return false;
	uint32_t flags = LOAD(l->flags), now = fdstate_now_ms();
	uint32_t options = flags & (FLAG_LINGER_OPTION | FLAG_OPTIONS_UNSEEN);
	/* A listener another descriptor or process holds may have had its options set through that one. */
	if (fdstate_entry_shared(l, flags))
		options |= FLAG_OPTIONS_UNSEEN;
	track_new(fd, INODE_UNKNOWN, FD_ACCEPTED | options, now);
	uint32_t tick = now | 1; /* 0 means "never" */
	*queue_check_due = LOAD(l->queue_check_ms) != tick;
	if (*queue_check_due)
		STORE(l->queue_check_ms, tick);
	return true;
}

static int sockopt_int(int fd, int option)
{
	int value = -1;
	socklen_t len = sizeof(value);
	return getsockopt(fd, SOL_SOCKET, option, &value, &len) == 0 ? value : -1;
}

bool fdstate_adopt(int fd, enum fd_origin origin)
{
	int saved = errno;
	int domain = sockopt_int(fd, SO_DOMAIN);
	bool tcp = (domain == AF_INET || domain == AF_INET6) && sockopt_int(fd, SO_TYPE) == SOCK_STREAM &&
		   sockopt_int(fd, SO_PROTOCOL) == IPPROTO_TCP;
	if (tcp) {
		if (sockopt_int(fd, SO_ACCEPTCONN) == 1)
			origin = FD_LISTENING;
		/* We did not create it, so someone else may hold it too. Nor do we know when it last carried
		 * data: its first write is looked at, and the connection's own quiet decides (closewait.c). */
		track_new(fd, inode_of(fd), origin | FLAG_SHARED | FLAG_OPTIONS_UNSEEN,
			  fdstate_now_ms() - config.closewait_idle_ms);
	} else
		fdstate_forget(fd); /* the number may carry a stale entry from a socket closed behind our back */
	errno = saved;
	return tcp;
}

static bool adopt_listed(int dir, const char *name, long fd, void *ctx)
{
	(void)name, (void)ctx;
	if (fd != dir && fd <= 0x7fffffff)
		fdstate_adopt((int)fd, FD_INHERITED);
	return true;
}

void fdstate_adopt_inherited(void)
{
	int saved = errno;
	int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		for (int fd = 0; fd < 1024; fd++) /* no /proc: probe the usual range */
			fdstate_adopt(fd, FD_INHERITED);
	} else {
		process_each_numbered(dir, adopt_listed, NULL);
		real.close(dir);
	}
	errno = saved;
}

void fdstate_set_origin(int fd, enum fd_origin origin)
{
	struct fd_entry *e = fdstate_entry(fd);
	if (e)
		update_flags(e, ORIGIN_MASK, origin);
}

/* Sets flags on fd's entry, if fd is tracked; a flag already set costs no atomic update. */
static void note_flags(int fd, uint32_t flags)
{
	struct fd_entry *e = fdstate_entry(fd);
	if (e && (LOAD(e->flags) & flags) != flags)
		update_flags(e, 0, flags);
}

void fdstate_note_read_eof(int fd)
{
	note_flags(fd, FLAG_READ_EOF);
}

void fdstate_note_peer_closed(int fd)
{
	note_flags(fd, FLAG_PEER_CLOSED);
}

void fdstate_note_shutdown(int fd, int how)
{
	note_flags(fd, (how != SHUT_WR ? FLAG_SHUT_RD : 0) | (how != SHUT_RD ? FLAG_SHUT_WR : 0));
}

void fdstate_note_gave_up(int fd)
{
	note_flags(fd, FLAG_GAVE_UP);
}

void fdstate_note_reads_unseen(int fd)
{
	note_flags(fd, FLAG_READS_UNSEEN);
}

void fdstate_note_in_epoll(int fd)
{
	note_flags(fd, FLAG_IN_EPOLL);
}

void fdstate_note_linger_option(int fd, bool on)
{
	struct fd_entry *e = fdstate_entry(fd);
	if (!e)
		return;
	/* Changed on a listener: the connections it completed meanwhile keep the kernel's copy of before. */
	bool queued_keep_theirs = (LOAD(e->flags) & ORIGIN_MASK) == FD_LISTENING;
	update_flags(e, on ? 0 : FLAG_LINGER_OPTION,
		     (on ? FLAG_LINGER_OPTION : 0) | (queued_keep_theirs ? FLAG_OPTIONS_UNSEEN : 0));
}

void fdstate_note_options_unseen(int fd)
{
	note_flags(fd, FLAG_OPTIONS_UNSEEN);
}

void fdstate_mark_shared(int fd)
{
	note_flags(fd, FLAG_SHARED);
}

bool fdstate_writing(int fd, uint32_t generation)
{
	struct fd_entry *e = entry(fd, false); /* forgotten by now: read the counter as it is */
	/* A read-modify-write, not a plain load: a full barrier after the close, as the writers' own
	 * increments are before their system call (a fence would do, but ThreadSanitizer has none). */
	if (!e)
		return false;
	uint64_t writing = __atomic_fetch_add(&e->writing, 0, __ATOMIC_SEQ_CST);
	return (writing >> 32) == generation && (uint32_t)writing != 0;
}

void fdstate_forget_range(unsigned int first, unsigned int last)
{
	if (last >= FDSTATE_MAX_FD)
		last = FDSTATE_MAX_FD - 1;
	for (unsigned int fd = first; fd <= last; fd++) {
		if (fd % FDSTATE_PAGE_ENTRIES == 0 && !__atomic_load_n(&fdstate_pages[fd / FDSTATE_PAGE_ENTRIES], __ATOMIC_ACQUIRE)) {
			fd += FDSTATE_PAGE_ENTRIES - 1; /* a page never mapped holds nothing to forget */
			continue;
		}
		fdstate_forget((int)fd);
	}
}

void fdstate_copy(int oldfd, int newfd)
{
	struct fd_entry *from = fdstate_entry(oldfd);
	if (!from) {
		fdstate_forget(newfd);
		return;
	}
	update_flags(from, 0, FLAG_SHARED);
	track(newfd, LOAD(from->ino), LOAD(from->flags), LOAD(from->fork_gen), LOAD(from->last_write_ms));
}

void fdstate_move(int oldfd, int newfd)
{
	struct fd_entry *from = fdstate_entry(oldfd);
	if (!from) {
		fdstate_forget(newfd);
		return;
	}
	if (track(newfd, LOAD(from->ino), LOAD(from->flags), LOAD(from->fork_gen), LOAD(from->last_write_ms)))
		STORE(entry(newfd, false)->bytes_read, LOAD(from->bytes_read));
	fdstate_forget(oldfd);
}

/* In a forked child, the writes other threads of the parent had in the kernel are not the child's:
 * those threads do not exist here, and their counts would keep its closes from lingering. Only
 * entries with a count are written to, so the child copies few pages, if any. */
static void forget_parent_writes(void)
{
	for (unsigned int p = 0; p < FDSTATE_MAX_FD / FDSTATE_PAGE_ENTRIES; p++) {
		struct fd_entry *page = __atomic_load_n(&fdstate_pages[p], __ATOMIC_ACQUIRE);
		for (unsigned int i = 0; page && i < FDSTATE_PAGE_ENTRIES; i++) {
			uint64_t writing = __atomic_load_n(&page[i].writing, __ATOMIC_RELAXED);
			if ((uint32_t)writing)
				__atomic_store_n(&page[i].writing, writing >> 32 << 32, __ATOMIC_RELAXED);
		}
	}
}

void fdstate_note_fork(bool in_child)
{
	__atomic_add_fetch(&fdstate_fork_generation, 1, __ATOMIC_RELAXED);
	if (in_child) { /* the child's summary counts the sockets it opened, accepted or received itself */
		__atomic_store_n(&sockets_seen, 0, __ATOMIC_RELAXED);
		forget_parent_writes();
	}
}

void fdstate_note_spawn(bool with_file_actions)
{
	int saved = errno;
	for (unsigned int p = 0; p < FDSTATE_MAX_FD / FDSTATE_PAGE_ENTRIES; p++) {
		struct fd_entry *page = __atomic_load_n(&fdstate_pages[p], __ATOMIC_ACQUIRE);
		for (unsigned int i = 0; page && i < FDSTATE_PAGE_ENTRIES; i++) {
			int fd = (int)(p * FDSTATE_PAGE_ENTRIES + i);
			if (LOAD(page[i].ino) && (with_file_actions || !(real.fcntl(fd, F_GETFD) & FD_CLOEXEC)))
				update_flags(&page[i], 0, FLAG_SHARED);
		}
	}
	errno = saved;
}

uint32_t fdstate_identity(int fd)
{
	struct fd_entry *e = fdstate_entry(fd);
	if (!e)
		return 0;
	int saved = errno;
	uint32_t now = inode_of(fd), known = LOAD(e->ino);
	errno = saved;
	/* Not recorded yet: the socket made here is taken as found. A failed exchange reloads known. */
	if (known == INODE_UNKNOWN && now &&
	    __atomic_compare_exchange_n(&e->ino, &known, now, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return now;
	return now == known ? now : 0;
}

uint32_t fdstate_note_queue_full(int fd)
{
	struct fd_entry *e = fdstate_entry(fd);
	return e ? __atomic_add_fetch(&e->queue_full_seen, 1, __ATOMIC_RELAXED) : 0;
}

bool fdstate_log_allowed(int fd, uint32_t interval_ms, uint32_t *suppressed)
{
	struct fd_entry *e = fdstate_entry(fd);
	*suppressed = 0;
	if (!e)
		return true;
	uint32_t now = fdstate_now_ms() | 1; /* 0 means "never logged" */
	uint32_t last = LOAD(e->log_ms);
	if (last && now - last < interval_ms) {
		__atomic_add_fetch(&e->log_suppressed, 1, __ATOMIC_RELAXED);
		return false;
	}
	STORE(e->log_ms, now);
	*suppressed = __atomic_exchange_n(&e->log_suppressed, 0, __ATOMIC_RELAXED);
	return true;
}

static unsigned int port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

void fdstate_ports(int fd, unsigned int *local, unsigned int *peer)
{
	int saved = errno;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	*local = getsockname(fd, (struct sockaddr *)&ss, &len) == 0 ? port_of(&ss) : 0;
	len = sizeof(ss);
	*peer = getpeername(fd, (struct sockaddr *)&ss, &len) == 0 ? port_of(&ss) : 0;
	errno = saved;
}
