/* Per-descriptor facts about the TCP sockets of this process, and nothing else.
 *
 * Lookups are O(1) and lock-free: a two-level table whose pages are mapped only when a socket with a
 * number in their range is first tracked, so memory follows the highest descriptor used, not
 * RLIMIT_NOFILE. A descriptor the table does not know is simply not a tracked TCP socket: every hook
 * passes it through after one lookup.
 *
 * The table can go stale behind our back (glibc's fclose and closefrom close descriptors without
 * calling close()), so nothing may act on an entry before fdstate_still_same() confirmed it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"

/* How this process came to hold the socket. */
enum fd_origin {
	FD_CREATED = 1, /* socket() here, neither connected nor listening yet */
	FD_CONNECTED,   /* connect() here: we are the client */
	FD_ACCEPTED,    /* accept() here: we are the server */
	FD_LISTENING,
	FD_INHERITED,   /* already open when the library loaded (inetd, systemd, a parent's socket) */
	FD_RECEIVED,    /* arrived by SCM_RIGHTS */
	FD_LINGERING,   /* the library's own copy of a socket the program closed (linger.c) */
};

/* What the program did and saw on a socket: struct fd_facts' flags (an entry keeps its origin in the
 * low bits, ORIGIN_MASK). */
enum {
	ORIGIN_MASK = 0x0f,
	FLAG_SHARED = 1u << 4,      /* set by a copy; fd_facts.shared says it with forks too */
	FLAG_READ_EOF = 1u << 5,    /* the program itself has read EOF: it knows the peer is done sending */
	FLAG_SHUT_RD = 1u << 6,     /* the program called shutdown() */
	FLAG_SHUT_WR = 1u << 7,
	FLAG_PEER_CLOSED = 1u << 8, /* the guard found that the peer closed the idle connection: for good */
	FLAG_READ_BULK = 1u << 9,   /* its last read brought a kilobyte or more: the peer sends in bulk */
	FLAG_WROTE_LAST = 1u << 10, /* the program wrote since it last read data (fd_facts.last_word) */
	FLAG_GAVE_UP = 1u << 11,    /* its shutdown() gave up a stream the peer sends in answer (linger.c) */
	FLAG_READS_UNSEEN = 1u << 12, /* it may be read where no hook counts (a stdio stream, syscall()) */
	FLAG_IN_EPOLL = 1u << 13,   /* the program registered it in an epoll instance: see epollset.h */
	FLAG_LINGER_OPTION = 1u << 14, /* the program turned SO_LINGER on: its close is its own (linger.c) */
	FLAG_OPTIONS_UNSEEN = 1u << 15, /* its options may have been set where no hook saw (a socket not made
					 * here, or accepted from such a listener or a shared one): ask the kernel */
};

struct fd_facts {
	uint32_t inode;       /* the socket's inode number (its low 32 bits), once fdstate_identity() read it */
	enum fd_origin origin;
	uint32_t flags;       /* FLAG_* */
	bool shared;          /* another descriptor or process may hold the same socket */
	uint32_t last_word;   /* bytes written since the last read, up to FDSTATE_LAST_WORD_MAX + 1 */
	uint32_t generation;  /* of the number: see struct fd_entry */
	uint64_t bytes_read;  /* by the program through the hooks: at most what it read (see below) */
};

/* Monotonic milliseconds of the kernel's coarse clock (~5 ns), wrapping every 49 days: compare by
 * subtraction. The library's own clock (clock.h): another preload's fake time does not move it. */
static inline uint32_t fdstate_now_ms(void)
{
	return clock_now_ms();
}

/* Starts tracking fd, a TCP socket made here, with the given origin (no system call). */
void fdstate_track(int fd, enum fd_origin origin);
/* Starts tracking fd, accepted from listener, if the listener is tracked: the kernel copies the
 * listener's options to it, and the entry what the table knows of them. False if it is not. Sets
 * *queue_check_due: should this accept look at the listener's accept queue? Once per clock tick (a
 * few ms) at most. One lookup of the listener and one clock read: every accept asks. */
bool fdstate_track_accepted(int fd, int listener, bool *queue_check_due);
/* Tracks fd if it is a TCP socket (a few getsockopt calls): for descriptors we did not create. */
bool fdstate_adopt(int fd, enum fd_origin origin);
/* Adopts every TCP socket open at load time, as inherited and shared. */
void fdstate_adopt_inherited(void);
/* How many TCP sockets this process has tracked since it started. */
uint64_t fdstate_sockets_seen(void);

void fdstate_set_origin(int fd, enum fd_origin origin);
void fdstate_note_read_eof(int fd);
/* After each read of data on the tracked socket whose entry is e: how much it brought (and whether
 * that is gone from the socket: not a MSG_PEEK). Inline (below): every read tells. */
struct fd_entry;
static inline void fdstate_note_read(struct fd_entry *e, size_t bytes, bool consumed);
void fdstate_note_peer_closed(int fd);
void fdstate_note_shutdown(int fd, int how);
void fdstate_note_gave_up(int fd);
/* The program may read fd where no hook counts what it reads: bytes_read and FLAG_WROTE_LAST may be
 * behind the socket's true history from now on. */
void fdstate_note_reads_unseen(int fd);
void fdstate_note_in_epoll(int fd);
/* The program set SO_LINGER on fd, on (l_onoff) or off. */
void fdstate_note_linger_option(int fd, bool on);
/* It set an option on fd where the hook cannot tell what (syscall()): its close asks the kernel. */
void fdstate_note_options_unseen(int fd);
void fdstate_mark_shared(int fd);
/* What the write path needs to know, from one lookup. */
struct write_note {
	uint32_t idle_ms; /* since the previous write, or since tracking began */
	bool peer_closed;
};
/* Records a write on the tracked socket whose entry (fdstate_entry) is e. Inline (below) into the
 * guard, which every write on a tracked socket calls. */
static inline void fdstate_note_write(struct fd_entry *e, struct write_note *note);
/* The same facts without recording a write: for a stdio call, which may only fill the stream's
 * buffer. The clock of the last write must move only when bytes go to the kernel (the guard's
 * shortcut for busy streams counts on it): such a caller records them with fdstate_note_write(). */
static inline void fdstate_peek_write(struct fd_entry *e, struct write_note *note);

/* A write on the tracked socket whose entry is e enters the kernel, which keeps the socket open until
 * it returns, even if another thread closes its number meanwhile. Counted until fdstate_write_ends(),
 * so that a lingering close can see it; returns what to pass to fdstate_write_ends(). Inline (below):
 * every write asks. */
struct write_token {
	struct fd_entry *entry; /* NULL: not counted */
	uint32_t generation;
};
static inline struct write_token fdstate_write_starts(struct fd_entry *e);
static inline void fdstate_write_ends(struct write_token writing);
/* Is a write on the socket that had this number and generation (struct fd_facts) in the kernel? Reads
 * the count even once the entry is forgotten: after the program's close() of the number, this sees
 * every write that got the socket before the close (a full barrier orders the two). */
bool fdstate_writing(int fd, uint32_t generation);

/* Inline (below): every close of a socket forgets it. */
static inline void fdstate_forget(int fd);
/* The same for the entry of fd, looked up already. */
static inline void fdstate_forget_entry(struct fd_entry *e);
void fdstate_forget_range(unsigned int first, unsigned int last);
/* newfd now names oldfd's socket: both are shared from here on. */
void fdstate_copy(int oldfd, int newfd);
/* The socket moved from oldfd to newfd, which now holds it instead: newfd takes oldfd's facts as they
 * are (under a new generation), oldfd is forgotten. */
void fdstate_move(int oldfd, int newfd);

/* After fork, every socket open at that moment is held by two processes: one counter bump, and in
 * the child, the write counts of the parent's other threads cleared (the only writes to the table,
 * so the child copies few of its pages). */
void fdstate_note_fork(bool in_child);
/* Before posix_spawn and friends: descriptors without FD_CLOEXEC (all, with file actions) go along. */
void fdstate_note_spawn(bool with_file_actions);

/* Reads the facts; false if fd is not a tracked TCP socket. Lock-free; touches no errno. Inline
 * (below): every close of a connection asks. */
static inline bool fdstate_get(int fd, struct fd_facts *facts);
/* The same from the entry of a tracked socket (fdstate_entry), looked up already. */
static inline void fdstate_facts(struct fd_entry *e, struct fd_facts *facts);
/* Confirms, with one fstat, that fd still is the socket the table describes, and returns its inode
 * (0: it is not). A socket made here (socket(), accept()) has its identity recorded by the first such
 * check: the table may go stale behind our back only between that and its tracking. Preserves errno. */
uint32_t fdstate_identity(int fd);
static inline bool fdstate_still_same(int fd)
{
	return fdstate_identity(fd) != 0;
}

/* A listener's accept queue was found full: returns how often that has happened on it. */
uint32_t fdstate_note_queue_full(int fd);

/* Per-socket log rate limit: true at most once per interval; counts what it refused. */
bool fdstate_log_allowed(int fd, uint32_t interval_ms, uint32_t *suppressed);

/* The socket's local and peer ports (0 where unknown): two syscalls, for the intervention path only. */
void fdstate_ports(int fd, unsigned int *local, unsigned int *peer);

/* --- The table's layout, public only for the inline lookup below --- */

#define FDSTATE_PAGE_ENTRIES 256u
#define FDSTATE_MAX_FD (1u << 21) /* beyond this (above Linux's default nr_open), sockets pass untracked */

/* All fields are accessed with __atomic builtins; ino is written last and read first, so a reader
 * that sees a non-zero ino sees the rest of the entry as it was when tracking began. */
struct fd_entry {
	uint32_t ino;       /* the socket's inode number; 0: not a tracked TCP socket */
	uint32_t flags;     /* origin | FLAG_* */
	uint32_t fork_gen;  /* fork_generation when tracking began: if it moved on, a fork shares us */
	uint32_t last_write_ms;
	uint32_t log_ms;
	uint32_t log_suppressed;
	uint32_t queue_full_seen; /* listeners: accepts that found the accept queue full */
	uint32_t queue_check_ms;  /* listeners: when an accept last looked at the queue */
	/* Each new socket under the number bumps its generation. writing: generation << 32 | the writes
	 * on that socket in the kernel now (counted with lingering on). A write of an older generation
	 * counts nothing, so a close does not take writes on the next socket with its number, in another
	 * thread, for its own; and a count left up (a thread cancelled, or longjmp'd, out of a blocking
	 * write never comes back to end it) ends with the number's next socket. */
	uint32_t generation;
	uint32_t last_word; /* bytes written since the last read, up to FDSTATE_LAST_WORD_MAX + 1 */
	uint64_t writing;
	/* What the program read through the hooks. Never more than it read from the socket: two threads
	 * reading at once may each add to the same old value, and reads that bypass the hooks (stdio's,
	 * through glibc's internal __read) count nothing. So what the kernel received less this is at
	 * least what is unread. */
	uint64_t bytes_read;
};

extern struct fd_entry *fdstate_pages[FDSTATE_MAX_FD / FDSTATE_PAGE_ENTRIES];

/* fd's place in the table, tracked or not; NULL if fd is out of range or its page was never needed. */
static inline struct fd_entry *fdstate_place(int fd)
{
	if ((unsigned int)fd >= FDSTATE_MAX_FD) /* negative numbers too */
		return NULL;
	unsigned int n = (unsigned int)fd;
	struct fd_entry *page = __atomic_load_n(&fdstate_pages[n / FDSTATE_PAGE_ENTRIES], __ATOMIC_ACQUIRE);
	return page ? &page[n % FDSTATE_PAGE_ENTRIES] : NULL;
}

/* fd's entry if fd is a tracked TCP socket, else NULL. Inline because every read and write of every
 * descriptor asks: for a file, pipe or terminal this is the whole cost of the library, two loads. */
static inline struct fd_entry *fdstate_entry(int fd)
{
	struct fd_entry *e = fdstate_place(fd);
	return e && __atomic_load_n(&e->ino, __ATOMIC_ACQUIRE) ? e : NULL;
}

static inline void fdstate_forget_entry(struct fd_entry *e)
{
	__atomic_store_n(&e->ino, 0, __ATOMIC_RELEASE);
}

static inline void fdstate_forget(int fd)
{
	struct fd_entry *e = fdstate_place(fd);
	if (e)
		fdstate_forget_entry(e);
}

static inline bool fdstate_is_tracked(int fd)
{
	return fdstate_entry(fd) != NULL;
}

/* Bumped by each fork: an entry made before the last one is shared with another process. */
extern uint32_t fdstate_fork_generation;

/* Does another descriptor or process share the socket of entry e, whose flags are these? */
static inline bool fdstate_entry_shared(struct fd_entry *e, uint32_t flags)
{
	return (flags & FLAG_SHARED) || __atomic_load_n(&e->fork_gen, __ATOMIC_RELAXED) !=
						__atomic_load_n(&fdstate_fork_generation, __ATOMIC_RELAXED);
}

static inline void fdstate_facts(struct fd_entry *e, struct fd_facts *facts)
{
	uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_RELAXED);
	*facts = (struct fd_facts){
		.inode = __atomic_load_n(&e->ino, __ATOMIC_RELAXED),
		.origin = (enum fd_origin)(flags & ORIGIN_MASK),
		.flags = flags,
		.shared = fdstate_entry_shared(e, flags),
		.last_word = __atomic_load_n(&e->last_word, __ATOMIC_RELAXED),
		.generation = __atomic_load_n(&e->generation, __ATOMIC_RELAXED),
		.bytes_read = __atomic_load_n(&e->bytes_read, __ATOMIC_RELAXED),
	};
}

static inline bool fdstate_get(int fd, struct fd_facts *facts)
{
	struct fd_entry *e = fdstate_entry(fd);
	if (e)
		fdstate_facts(e, facts);
	return e != NULL;
}

static inline enum fd_origin fdstate_origin(struct fd_entry *e)
{
	return (enum fd_origin)(__atomic_load_n(&e->flags, __ATOMIC_RELAXED) & ORIGIN_MASK);
}

static inline void fdstate_write_facts(struct fd_entry *e, struct write_note *note, bool record)
{
	uint32_t now = fdstate_now_ms();
	note->peer_closed = __atomic_load_n(&e->flags, __ATOMIC_RELAXED) & FLAG_PEER_CLOSED;
	uint32_t last = __atomic_load_n(&e->last_write_ms, __ATOMIC_RELAXED);
	if (record && last != now) /* a stream of writes within one tick leaves the cache line clean */
		__atomic_store_n(&e->last_write_ms, now, __ATOMIC_RELAXED);
	note->idle_ms = now - last; /* huge if another thread wrote after our clock read: one look more */
}

static inline void fdstate_note_write(struct fd_entry *e, struct write_note *note)
{
	fdstate_write_facts(e, note, true);
}

static inline void fdstate_peek_write(struct fd_entry *e, struct write_note *note)
{
	fdstate_write_facts(e, note, false);
}

static inline struct write_token fdstate_write_starts(struct fd_entry *e)
{
	uint32_t generation = __atomic_load_n(&e->generation, __ATOMIC_ACQUIRE);
	uint64_t old = __atomic_load_n(&e->writing, __ATOMIC_RELAXED), mine;
	do /* sequentially consistent: before the kernel looks the number up */
		mine = (old >> 32) == generation ? old + 1 : ((uint64_t)generation << 32 | 1);
	while (!__atomic_compare_exchange_n(&e->writing, &old, mine, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
	return (struct write_token){e, generation};
}

static inline void fdstate_write_ends(struct write_token writing)
{
	if (!writing.entry) /* the entry's page is never unmapped, so it is still there */
		return;
	uint64_t old = __atomic_load_n(&writing.entry->writing, __ATOMIC_RELAXED);
	do
		if ((old >> 32) != writing.generation || (uint32_t)old == 0)
			return; /* the number has a new socket since: its count is not ours */
	while (!__atomic_compare_exchange_n(&writing.entry->writing, &old, old - 1, true, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED));
}

/* A last word this short, after a stream the program read, is a goodbye (TLS's close_notify): see
 * linger.c. */
#define FDSTATE_LAST_WORD_MAX 64

/* After a write of bytes of data on the tracked socket whose entry is e: the program's last word is
 * its own (see linger.c), and so long. A stream of writes stores nothing after its first 64 bytes. */
static inline void fdstate_note_wrote(struct fd_entry *e, size_t bytes)
{
	uint32_t word = bytes > FDSTATE_LAST_WORD_MAX ? FDSTATE_LAST_WORD_MAX + 1 : (uint32_t)bytes;
	if (!(__atomic_load_n(&e->flags, __ATOMIC_RELAXED) & FLAG_WROTE_LAST)) {
		__atomic_store_n(&e->last_word, word, __ATOMIC_RELAXED);
		__atomic_fetch_or(&e->flags, FLAG_WROTE_LAST, __ATOMIC_RELAXED);
		return;
	}
	uint32_t so_far = __atomic_load_n(&e->last_word, __ATOMIC_RELAXED);
	if (so_far <= FDSTATE_LAST_WORD_MAX) /* not atomic: two threads' words may count as one */
		__atomic_store_n(&e->last_word, so_far + word > FDSTATE_LAST_WORD_MAX ? FDSTATE_LAST_WORD_MAX + 1
										      : so_far + word, __ATOMIC_RELAXED);
}

/* A kilobyte or more says the peer sends in bulk (an upload): see linger.c. */
#define FDSTATE_BULK_READ_MIN 1024

static inline void fdstate_note_read(struct fd_entry *e, size_t bytes, bool consumed)
{
	uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_RELAXED);
	if (consumed) { /* not atomic: a lost update only counts less (see struct fd_entry) */
		__atomic_store_n(&e->bytes_read, __atomic_load_n(&e->bytes_read, __ATOMIC_RELAXED) + bytes,
				 __ATOMIC_RELAXED);
		if (flags & FLAG_WROTE_LAST)
			__atomic_fetch_and(&e->flags, ~(uint32_t)FLAG_WROTE_LAST, __ATOMIC_RELAXED);
	}
	bool bulk = bytes >= FDSTATE_BULK_READ_MIN;
	if (!(flags & FLAG_READ_BULK) == !bulk)
		return; /* a stream of reads alike leaves the flags untouched */
	if (bulk)
		__atomic_fetch_or(&e->flags, FLAG_READ_BULK, __ATOMIC_RELAXED);
	else
		__atomic_fetch_and(&e->flags, ~(uint32_t)FLAG_READ_BULK, __ATOMIC_RELAXED);
}
