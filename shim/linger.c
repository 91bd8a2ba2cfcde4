#include "linger.h"
#include "clock.h"
#include "epollset.h"
#include "high_water.h"
#include "layout.h"
#include "log.h"
#include "ownfd.h"
#include "process.h"
#include "real.h"
#include "vfork.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SCAN_MS 50          /* how often the time limits are checked while sockets linger */
#define PICKUP_MS 10        /* how soon the drain thread takes up a socket handed over without a message */
#define IDLE_CHECK_MS 1000  /* how often an idle drain thread checks that its descriptors are intact */
#define EXIT_GRACE_MS 1000  /* at exit, how long the sockets still lingering may take to finish */
#define DRAIN_ROUNDS 16     /* reads per socket and wakeup, so that one fast sender cannot starve the rest */
#define DOORBELL UINT32_MAX /* epoll data of the doorbell, as slot numbers are for sockets */
#ifndef FUTEX_WAIT_PRIVATE /* linux/futex.h, which musl's headers may lack */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
#endif
#define START_WAIT_YIELDS 10000 /* waiting for another thread to start the drain, or make its pipe: a few ms */

/* A lingering socket. The closing thread claims a slot (RESERVED: not there yet for anyone else),
 * fills in the program's number, the time and, if no drain thread runs, the addresses (see
 * linger_copy), and publishes the socket in one atomic store, so that a forked child can tell, with
 * one fstat, which of its descriptors are copies of lingering sockets. From then on the slot belongs
 * to the drain thread. */
struct lingering {
	uint64_t socket; /* inode << 32 | (fd + 1); 0: the slot is free */
	bool watched;    /* taken up by the drain thread */
	bool registered; /* in the drain thread's epoll set */
	int program_fd;  /* the number the program closed, and its addresses, for the log */
	int unread;      /* what the close found unread, for the log */
	struct socket_addresses addresses;
	bool addressed;  /* the addresses were read by the closing thread */
	bool announced;  /* and "linger started" logged by it */
	bool quiet;      /* logged only if data comes: see linger_copy */
	uint32_t start_ms, last_data_ms; /* the close; the peer's last data, from the drain's start on */
	long long bytes;
};
#define RESERVED UINT64_MAX

static struct lingering slots[LINGER_MAX_LIMIT]; /* untouched pages cost no memory */
static unsigned int capacity;                  /* set with the descriptors */
/* Which slots are taken, a bit each: the drain thread's passes (several a second while quiet sockets
 * wait) visit those alone, not every slot a burst once used, and a close claims the lowest free one. */
#define WORD_BITS 64
static uint64_t taken[LINGER_MAX_LIMIT / WORD_BITS];
static unsigned int high_water; /* slots [0, high_water) may have been claimed: a forked child clears those */
static unsigned int in_use;
static int private_floor;

enum { STOPPED, STARTING, RUNNING, PARKED }; /* PARKED: for good, under a seccomp filter */
static int thread_state;
static uint64_t quiet_lingers; /* ended with nothing drained, so without a line: the summary counts them */
/* A close handed a socket over while no drain thread ran: the next call that may start one does
 * (linger_start_wanted). */
bool linger_wanted;
bool linger_unseen_threads;
/* The drain's epoll instance and doorbell pipe are made by the first close that lingers, so that a
 * process that never lingers holds no descriptor of the library's (and its thread sleeps for good). */
enum { NO_DESCRIPTORS, MAKING_DESCRIPTORS, DESCRIPTORS_READY, DESCRIPTORS_ENDING };
static int descriptors;
/* Closes between their look at the descriptors and their socket's publication (begin_handing): the
 * drain thread, ending, waits for them, so that its last walk over the slots finds their sockets. */
static unsigned int handing;
static int epoll_fd = -1, doorbell_read = -1, doorbell_write = -1; /* kept by ownfd */
static bool unrung; /* a socket came without a message (quiet, or the pipe full): look for it */
static bool waits_long; /* the drain thread's wait may outlast PICKUP_MS: a quiet close rings */

/* The doorbell's message for a socket handed over is its slot's number (the slot says the rest):
 * written whole by one write(), as it is smaller than PIPE_BUF, so the drain thread reads it whole,
 * and after the closing thread wrote it. */
typedef uint32_t doorbell_message;

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

static int fd_of(uint64_t socket)
{
	return (int)(uint32_t)socket - 1;
}

static uint32_t inode_of(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) ? (uint32_t)st.st_ino : 0;
}

/* Is the descriptor still our socket? closefrom() may have closed it behind our back, and the
 * number may now be the program's. */
static bool still_there(uint64_t socket)
{
	int saved = errno;
	bool same = inode_of(fd_of(socket)) == (uint32_t)(socket >> 32);
	errno = saved;
	return same;
}

/* --- the closing thread's side --- */

/* A slot for a socket, RESERVED until publish(); -1 if none is free. *lingering: how many sockets
 * linger with this one. */
static int claim(unsigned int *lingering)
{
	unsigned int slots_made = LOAD(capacity);
	if ((*lingering = __atomic_add_fetch(&in_use, 1, __ATOMIC_ACQ_REL)) <= slots_made) {
		for (unsigned int w = 0; w * WORD_BITS < slots_made; w++) {
			/* The slot's socket is the claim; its bit is set only after it, and cleared before
			 * the slot is freed (release): a set bit is a taken slot. One being claimed, not yet
			 * published, may be passed over. */
			for (uint64_t free = ~LOAD(taken[w]); free;) {
				unsigned int bit = (unsigned int)__builtin_ctzll(free), n = w * WORD_BITS + bit;
				uint64_t expected = 0;
				if (n >= slots_made)
					break;
				high_water_raise(&high_water, n + 1); /* before the claim: a fork may come between */
				if (__atomic_compare_exchange_n(&slots[n].socket, &expected, RESERVED, false,
								__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
					__atomic_fetch_or(&taken[w], 1ull << bit, __ATOMIC_ACQ_REL);
					return (int)n;
				}
				/* Taken meanwhile: the word as it is now, past this bit (one freed since counts). */
				free = ~LOAD(taken[w]) & ~((2ull << bit) - 1);
			}
		}
	}
	__atomic_sub_fetch(&in_use, 1, __ATOMIC_ACQ_REL);
	return -1;
}

/* The next taken slot after slot `after` (-1: the first), or -1. */
static int next_taken(int after)
{
	unsigned int n = (unsigned int)(after + 1);
	for (unsigned int w = n / WORD_BITS; w < LINGER_MAX_LIMIT / WORD_BITS; w++) {
		uint64_t bits = LOAD(taken[w]);
		if (w == n / WORD_BITS)
			bits &= ~0ull << (n % WORD_BITS);
		if (bits)
			return (int)(w * WORD_BITS + (unsigned int)__builtin_ctzll(bits));
	}
	return -1;
}
#define EACH_TAKEN(i) (int i = next_taken(-1); i >= 0; i = next_taken(i))

static void publish(int slot, int fd, uint32_t inode)
{
	STORE(slots[slot].socket, (uint64_t)inode << 32 | (uint32_t)(fd + 1));
}

/* A socket a closing thread published, or 0. */
static uint64_t published(const struct lingering *l)
{
	uint64_t socket = LOAD(l->socket);
	return socket == RESERVED ? 0 : socket;
}

static void *drain_loop(void *unused);
static void end_all(void);

/* Is the drain thread running, or can this call start it? It starts with every signal blocked: the
 * program's handlers run in the program's threads. Never from close(): pthread_create allocates,
 * and a close() may run in a signal handler that interrupted malloc. */
static bool drain_running(void)
{
	/* If another thread is starting it (tens of microseconds), wait for the outcome. Bounded, for
	 * a call in a signal handler that interrupted the starter. */
	for (int i = 0;; i++) {
		int state = LOAD(thread_state);
		if (state == RUNNING)
			return true;
		if (i == START_WAIT_YIELDS)
			return false;
		if (state == STOPPED && __atomic_compare_exchange_n(&thread_state, &state, STARTING, false,
								      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			break; /* this thread starts it */
		if (state == STARTING)
			sched_yield();
	}
	pthread_t thread;
	pthread_attr_t attr;
	sigset_t all, old;
	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* libc's, not the hook (hooks_fd.c), which would come back here */
	int (*create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) = NEXT(pthread_create);
	bool ok = create && create(&thread, &attr, drain_loop, NULL) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (!ok && LOAD(descriptors) == DESCRIPTORS_READY)
		end_all(); /* while STARTING: no other thread starts one, or ends them, meanwhile */
	STORE(thread_state, ok ? RUNNING : STOPPED);
	return ok;
}

static void drop_descriptors(void)
{
	ownfd_drop(&epoll_fd);
	ownfd_drop(&doorbell_read);
	ownfd_drop(&doorbell_write);
	STORE(descriptors, NO_DESCRIPTORS);
}

/* The epoll instance and doorbell, made by the first close that lingers (system calls only: a
 * close() may run in a signal handler), which then wakes the drain thread. Another close meanwhile
 * waits for them, boundedly, as for the thread's start. */
static bool descriptors_ready(void)
{
	for (int i = 0;; i++) {
		int state = __atomic_load_n(&descriptors, __ATOMIC_SEQ_CST); /* see begin_handing */
		if (state == DESCRIPTORS_READY)
			return true;
		if (i == START_WAIT_YIELDS || state == DESCRIPTORS_ENDING)
			return false;
		if (state == NO_DESCRIPTORS && __atomic_compare_exchange_n(&descriptors, &state, MAKING_DESCRIPTORS,
									   false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			break;
		sched_yield();
	}
	/* ownfd_keep() closes what it is given, kept or not. */
	int pipe_fds[2];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	bool ok = ep >= 0 && ownfd_keep(ep, &epoll_fd) >= 0 && pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) == 0;
	if (ok && ownfd_keep(pipe_fds[0], &doorbell_read) < 0) {
		real.close(pipe_fds[1]);
		ok = false;
	}
	ok = ok && ownfd_keep(pipe_fds[1], &doorbell_write) >= 0;
	struct epoll_event bell = {.events = EPOLLIN, .data.u32 = DOORBELL};
	ok = ok && real.epoll_ctl(epoll_fd, EPOLL_CTL_ADD, doorbell_read, &bell) == 0;
	if (!ok) {
		drop_descriptors();
		return false;
	}
	/* By default a quarter of the descriptors: the rest is the program's. */
	struct rlimit rl;
	rlim_t quarter = (getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024) / 4;
	STORE(capacity, config.linger_max ? config.linger_max
					  : quarter < LINGER_MAX_LIMIT ? (unsigned int)quarter : LINGER_MAX_LIMIT);
	STORE(private_floor, ownfd_private_floor());
	STORE(descriptors, DESCRIPTORS_READY);
	syscall(SYS_futex, &descriptors, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	return true;
}

/* closefrom() may have closed our doorbell: never write into what has its number now, nor into a
 * pipe whose reading end it closed (that write would raise SIGPIPE in the program's thread). Unrung,
 * the socket waits for the thread's next pass, which finds its descriptors gone and closes it
 * (end_every). */
static void ring(doorbell_message slot)
{
	if (!ownfd_intact(&doorbell_write) || !ownfd_intact(&doorbell_read) ||
	    real.write(LOAD(doorbell_write), &slot, sizeof(slot)) != (ssize_t)sizeof(slot)) /* atomic: < PIPE_BUF */
		STORE(unrung, true);
}

/* A quiet socket (linger_copy) waits for the drain thread's next pass, which comes within PICKUP_MS,
 * unless the thread may sleep longer: then, or if must_ring, it is rung for. Each side stores its
 * flag before it reads the other's (next_wait_ms), so at least one sees the other's. The flag is
 * set either way: the passes read a quiet socket until it ends or joins the epoll set. */
static void hand_quietly(doorbell_message slot, bool must_ring)
{
	__atomic_store_n(&unrung, true, __ATOMIC_SEQ_CST);
	if (must_ring || __atomic_load_n(&waits_long, __ATOMIC_SEQ_CST))
		ring(slot);
}

/* With SO_LINGER on, the program chose its close itself: {1, 0} sends RST on purpose (HAProxy's
 * nolinger), {1, N} blocks in close() for up to N seconds. The setsockopt hook told, unless the
 * socket's options were set where no hook saw: then the kernel does. */
static bool linger_option_set(int fd, const struct fd_facts *facts)
{
	if (!(facts->flags & FLAG_OPTIONS_UNSEEN))
		return facts->flags & FLAG_LINGER_OPTION;
	struct linger option;
	socklen_t len = sizeof(option);
	return getsockopt(fd, SOL_SOCKET, SO_LINGER, &option, &len) != 0 || option.l_onoff;
}

/* The kernel's struct tcp_info, as far as this reads it, in its own fixed layout: glibc's stops before
 * the fields of Linux 4.1 and later, musl's goes on past them. notsent_bytes and data_segs_out came
 * with Linux 4.6; an older kernel's answer is shorter. */
struct kernel_tcp_info {
	uint8_t state, ca_state, retransmits, probes, backoff, options, wscale, app_limited;
	uint32_t rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets;
	uint32_t last_data_sent, last_ack_sent, last_data_recv, last_ack_recv;
	uint32_t pmtu, rcv_ssthresh, rtt, rttvar, snd_ssthresh, snd_cwnd, advmss, reordering;
	uint32_t rcv_rtt, rcv_space, total_retrans;
	uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
	uint32_t segs_out, segs_in, notsent_bytes, min_rtt, data_segs_in, data_segs_out;
};

/* The socket's TCP_INFO, and how much of it the kernel gave (0: none; an older kernel's is shorter). */
static socklen_t tcp_info_of(int fd, struct kernel_tcp_info *t)
{
	socklen_t len = sizeof(*t);
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, t, &len) == 0 ? len : 0;
}
#define TCP_INFO_HAS(len, field)                                                                   \
	((len) >= offsetof(struct kernel_tcp_info, field) + sizeof(((struct kernel_tcp_info *)0)->field))

/* From the table alone: may the program be a client giving up a download (gives_up)? It read, and
 * wrote at most a goodbye since. */
static bool may_give_up(const struct fd_facts *facts)
{
	return facts->origin == FD_CONNECTED && facts->bytes_read &&
	       (!(facts->flags & FLAG_WROTE_LAST) || facts->last_word <= FDSTATE_LAST_WORD_MAX);
}

/* Is a client giving up a stream its server sends in answer (see close_would_lose)? Its last word,
 * if it wrote one since, only a goodbye of a few bytes, perhaps in flight (TLS's close_notify); and
 * if it shut its sending side down first (aria2c, the JVM), its FIN perhaps in flight too. The peer
 * streams: the program's last read was a kilobyte or more, or as much waits unread. */
static bool gives_up(const struct kernel_tcp_info *t, bool since_4_6, const struct fd_facts *facts)
{
	uint32_t theirs = t->last_data_recv, ours = t->last_data_sent; /* ms ago */
	bool fin_waits = t->state == TCP_FIN_WAIT1 || t->state == TCP_FIN_WAIT2;
	bool up = t->state == TCP_ESTABLISHED || (facts->flags & FLAG_SHUT_WR && fin_waits);
	if (!may_give_up(facts) || !up || !since_4_6 || t->notsent_bytes)
		return false;
	uint32_t fin_in_flight = t->state == TCP_FIN_WAIT1;
	bool streams = facts->flags & FLAG_READ_BULK ||
		       t->bytes_received - facts->bytes_read >= FDSTATE_BULK_READ_MIN;
	if (!(facts->flags & FLAG_WROTE_LAST))
		return t->unacked <= fin_in_flight && (theirs < ours || (theirs == ours && streams));
	return streams && t->unacked <= 1 + fin_in_flight && theirs < CLOSEWAIT_IDLE_MS_DEFAULT;
}

/* The kernel's SO_MEMINFO (Linux 4.12): a socket's memory, in this order (SK_MEMINFO_*). */
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif
#ifndef SIOCOUTQNSD
#define SIOCOUTQNSD 0x894B
#endif
enum { MEMINFO_RMEM_ALLOC, MEMINFO_RCVBUF, MEMINFO_WMEM_ALLOC, MEMINFO_SNDBUF, MEMINFO_FWD_ALLOC,
       MEMINFO_WMEM_QUEUED, MEMINFO_OPTMEM, MEMINFO_BACKLOG, MEMINFO_READ /* as far as this reads */ };

/* The close of a finished exchange, asked more cheaply than TCP_INFO (close_would_lose): the program
 * read through the hooks (and nowhere else they cannot see), wrote last, read nothing in bulk and did
 * not shut down. Then the peer's data is no newer than ours (data that came after our answer would be
 * unread, or its read would have made the program's last word a read), and a plain close loses
 * nothing if nothing waits unread or unsent. One SO_MEMINFO says both at once when all we sent is
 * acknowledged (on loopback, by the time the program closes); else SIOCOUTQNSD says whether any of it
 * is unsent. False: ask TCP_INFO. */
static HOT bool finished_exchange(int fd, const struct fd_facts *facts)
{
	const uint32_t told = FLAG_WROTE_LAST | FLAG_READ_BULK | FLAG_SHUT_WR | FLAG_READS_UNSEEN;
	if ((facts->flags & told) != FLAG_WROTE_LAST || !facts->bytes_read)
		return false;
	uint32_t mem[MEMINFO_READ];
	socklen_t len = sizeof(mem);
	int unsent;
	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 || len < sizeof(mem) ||
	    mem[MEMINFO_RMEM_ALLOC] || mem[MEMINFO_BACKLOG])
		return false;
	return mem[MEMINFO_WMEM_QUEUED] == 0 || (ioctl(fd, SIOCOUTQNSD, &unsent) == 0 && unsent == 0);
}

/* Would a plain close() now lose data the peer has not yet read? The kernel answers with RST, which
 * throws away whatever of ours the peer has not yet read, when input is left unread at the close, and
 * when input arrives after it. So yes if we sent anything, and anything is unread, or the peer may
 * still be sending: its data came within the last second, and is newer than ours (an upload we
 * answered before its end), or the program's last read brought a kilobyte or more (the peer sends in
 * bulk; a request is smaller: the kernel's clock counts in ticks of a few milliseconds, and a server
 * often reads, answers and closes within one, before the uploader's next segment), or the program shut
 * down its sending side first (it said it is done, not that the peer is: python's socketserver does
 * so on every connection, after an error answer to a body it never read too), or part of our answer
 * is not even sent yet (a large answer, which a request or body arriving after the close would cut).
 * No after a finished exchange (the request read, the answer the last data either way: the peer
 * waits for our FIN), no if we never sent data (nothing of ours to lose), and no on an idle
 * connection (a server's idle timeout; nothing either way for a second): a plain close's FIN, or RST
 * for what is unread, tells the peer at once, where a linger would read and throw away what it sent
 * next, instead of its writes failing and its own error path running. Once the peer's FIN is in and
 * nothing is left unread, a plain close is a clean one. No either when a client gives up a stream
 * its server sends in answer (curl --max-time, curl | head): the connection is up both ways, the
 * program read since its last write, all it sent is acknowledged, and the peer's data is newer than
 * ours (or as new, within the millisecond of the kernel's clock, in which a megabyte arrives here,
 * and read in bulk). The server read what we sent before it answered; the RST stops it at once,
 * where a linger would read on for nothing and hold the program's exit for a second; a goodbye of a
 * few bytes written since (TLS's close_notify) does not change that, and a client that shuts down
 * before it closes (the JVM) is judged at its shutdown(), while its FIN is not out. (A server that
 * answered early and read on is no such client: the upload it gives up was under way before its
 * answer. A client whose commands the server reads only after a long answer to an earlier one loses
 * them, as without the library: libtcprare(7).)
 * This runs on every close of a connection that is not a finished exchange (finished_exchange, asked
 * first, settles those with one or two cheap system calls): one getsockopt(), and one ioctl() more
 * only if the program may have left input unread; the common one (nothing unread, nothing more to
 * come) leaves first. */
static bool close_would_lose(int fd, const struct fd_facts *facts, int *unread)
{
	struct kernel_tcp_info t;
	*unread = 0;
	socklen_t len = tcp_info_of(fd, &t);
	if (!len)
		return false;
	bool since_4_6 = TCP_INFO_HAS(len, data_segs_out);
	uint32_t theirs = t.last_data_recv, ours = t.last_data_sent; /* ms ago */
	bool peer_may_send = t.state == TCP_ESTABLISHED || t.state == TCP_FIN_WAIT1 || t.state == TCP_FIN_WAIT2;
	/* With the peer's FIN in, nothing more arrives; but what is unread still draws RST. */
	bool fin_in = t.state == TCP_CLOSE_WAIT || t.state == TCP_CLOSING || t.state == TCP_LAST_ACK;
	bool unsent = since_4_6 && t.notsent_bytes > 0;
	bool more_coming = peer_may_send && theirs < CLOSEWAIT_IDLE_MS_DEFAULT &&
			   (theirs < ours || (facts->flags & (FLAG_READ_BULK | FLAG_SHUT_WR)) || unsent);
	/* What the kernel received less what the program read through the hooks is at least what is
	 * unread (struct fd_entry): when that is nothing, the ioctl is saved. The kernel counts the
	 * peer's FIN as a byte received. */
	bool none_unread = TCP_INFO_HAS(len, bytes_received) &&
			   t.bytes_received == facts->bytes_read + fin_in;
	if (none_unread && !more_coming)
		return false;
	bool sent = !since_4_6 || t.data_segs_out > 0; /* an older kernel: assume we did */
	bool idle = theirs >= CLOSEWAIT_IDLE_MS_DEFAULT && ours >= CLOSEWAIT_IDLE_MS_DEFAULT;
	bool gave_up_last = (facts->flags & (FLAG_GAVE_UP | FLAG_WROTE_LAST)) == FLAG_GAVE_UP;
	bool given_up = gave_up_last || gives_up(&t, since_4_6, facts);
	if (!sent || idle || given_up || !(peer_may_send || fin_in))
		return false;
	if (!none_unread && ioctl(fd, FIONREAD, unread) != 0)
		return false;
	return *unread > 0 || more_coming;
}

/* Logs about the socket the program knew as shown_fd, through seen_fd (the program's descriptor, or
 * the library's copy once the program's number is gone). */
static void note(enum log_event event, int seen_fd, int shown_fd, struct log_field field)
{
	if (seen_fd == shown_fd) {
		log_event(event, seen_fd, &field, 1);
		return;
	}
	struct socket_addresses addresses = {0};
	if (log_enabled())
		socket_addresses_read(seen_fd, &addresses);
	log_event_at(event, shown_fd, &addresses, &field, 1);
}

static bool skip(int seen_fd, int shown_fd, const char *reason)
{
	note(EV_LINGER_SKIPPED, seen_fd, shown_fd, FIELD_TEXT("reason", reason));
	return false;
}

/* Never on a socket another descriptor or process may still use (shutdown() would cut it for them,
 * and their copy keeps the socket open anyway), nor on one the program read to its end: from the
 * table alone, before any system call. */
static bool lingerable(const struct fd_facts *facts)
{
	return !facts->shared && !(facts->flags & FLAG_READ_EOF) &&
	       (facts->origin == FD_CONNECTED || facts->origin == FD_ACCEPTED);
}

static bool may_linger(int fd, struct fd_facts *facts)
{
	return fdstate_get(fd, facts) && lingerable(facts);
}

/* Is the socket open in another process, made where no hook saw it (see process.h)? Asked only
 * when a close is about to linger, and before anything is done to the socket or the epoll sets it
 * shares with them. */
static bool held_elsewhere(uint32_t inode)
{
	return process_is_unseen_child() || process_descendant_holds(inode);
}

/* Should the socket the program gives up as shown_fd linger, seen through seen_fd (see note())? Asked
 * once finished_exchange() said it is not a finished exchange that loses nothing. The kernel's view
 * first: most closes lose nothing and end here, after two system calls. In observe mode, logs the
 * close that will send RST, and says no. */
static bool worth_lingering(int seen_fd, int shown_fd, struct fd_facts *facts, int *unread)
{
	/* The identity check after the kernel's view: on a stale entry's number, those two system calls
	 * asked about the socket being closed all the same. (A copy was checked when it was made.) */
	if (!close_would_lose(seen_fd, facts, unread))
		return false;
	if (seen_fd == shown_fd && !(facts->inode = fdstate_identity(seen_fd)))
		return false;
	if (!config_ports_cover(seen_fd) || linger_option_set(seen_fd, facts))
		return false;
	if (config.linger != MODE_ON) {
		if (*unread > 0)
			note(EV_LINGER_OBSERVED, seen_fd, shown_fd, FIELD_NUM("unread", *unread));
		return false;
	}
	if (fdstate_writing(shown_fd, facts->generation)) /* looked at again once the number is gone */
		return skip(seen_fd, shown_fd, "writing");
	if (held_elsewhere(facts->inode))
		return skip(seen_fd, shown_fd, "shared");
	return true;
}

/* Why the drain cannot take a socket now, or NULL if it can. Its thread need not run yet: the
 * socket waits in its slot, and its message in the pipe, until it does. */
static const char *drain_unready(void)
{
	if (!descriptors_ready())
		return "descriptors";
	if (LOAD(in_use) >= LOAD(capacity))
		return "limit";
	return NULL;
}

/* drain_unready(), for a close that then hands its socket over, or not, and says so (end_handing).
 * Counted first, the ending drain thread's store looked at after (both in one total order): either
 * this close sees the descriptors ending, or the thread sees it counted and waits for it. */
static const char *begin_handing(void)
{
	__atomic_add_fetch(&handing, 1, __ATOMIC_SEQ_CST);
	const char *unready = drain_unready();
	if (unready)
		__atomic_sub_fetch(&handing, 1, __ATOMIC_SEQ_CST);
	return unready;
}

static void end_handing(void)
{
	__atomic_sub_fetch(&handing, 1, __ATOMIC_SEQ_CST);
}

/* A copy of fd's socket on a private close-on-exec number, above the program's low numbers; -1 if
 * there is no room. */
static int private_copy(int fd)
{
	int floor = LOAD(private_floor) ? LOAD(private_floor) : ownfd_private_floor(); /* no thread in observe mode */
	int copy = real.fcntl(fd, F_DUPFD_CLOEXEC, floor);
	if (copy < 0 && errno == EINVAL) { /* the program lowered RLIMIT_NOFILE below our floor */
		STORE(private_floor, ownfd_private_floor());
		copy = real.fcntl(fd, F_DUPFD_CLOEXEC, LOAD(private_floor));
	}
	return copy;
}

/* Right before the program's number is released: the copy takes the socket's entry over, and is the
 * library's from now on (the program's close() and dup() see it as an unused number: linger_holds). */
static void take_over(int fd, int copy)
{
	fdstate_move(fd, copy);
	fdstate_set_origin(copy, FD_LINGERING);
}

static void close_plainly(int copy)
{
	fdstate_forget(copy);
	real.close(copy);
}

/* The program's number is gone and the copy holds the socket alone: the drain thread takes it over;
 * it also sends the FIN (shutdown takes about half the time of a whole close). Unless a write another
 * thread started before the program let go is still in the kernel: that write holds the socket open
 * until it is done, and a shutdown would cut it short; then ours is the plain close the program asked
 * for. (A claimed slot is the drain thread's to act on.) */
static void linger_copy(int copy, const struct fd_facts *facts, int program_fd, int unread)
{
	int slot = -1;
	unsigned int lingering;
	const char *plain = fdstate_writing(program_fd, facts->generation) ? "writing"
			    : (slot = claim(&lingering)) < 0 ? "limit" : NULL;
	if (plain) {
		skip(copy, program_fd, plain); /* the addresses through the copy, while it is open */
		close_plainly(copy);
		return;
	}
	/* Only now: the drain thread must find the copy the socket's last descriptor, or closing it
	 * would leave the socket, and its registration in the drain's epoll set, alive. */
	slots[slot].program_fd = program_fd;
	slots[slot].unread = unread;
	slots[slot].start_ms = fdstate_now_ms();
	slots[slot].bytes = 0;
	/* The program sent its FIN itself and left nothing unread: the linger matters only if data comes
	 * after the close (python's socketserver answering an upload before its end), and most end at
	 * the peer's EOF having changed nothing on the wire (haproxy closes so). Such a linger is logged
	 * once data comes, and waits for the drain thread's next pass (PICKUP_MS) instead of waking it,
	 * unless the thread may sleep longer, or slots run short. */
	bool quiet = facts->flags & FLAG_SHUT_WR && unread == 0;
	slots[slot].quiet = quiet;
	bool waiting = LOAD(thread_state) != RUNNING;
	/* The log's addresses while the connection is still up: after the program's own shutdown() the
	 * peer may finish it before the drain thread looks (then the peer's is gone). A quiet linger has
	 * a line only once data comes, and reads them then: most often the peer is still sending. */
	if (waiting || (facts->flags & FLAG_SHUT_WR && !quiet)) {
		if (log_enabled())
			socket_addresses_read(copy, &slots[slot].addresses);
		slots[slot].addressed = true;
	}
	if (waiting && !quiet) { /* the thread starts with the program's next wait or socket read
				  * (linger.h): the peer gets our FIN now, not then, and the log its line,
				  * even if the program then execs or _exits and no thread ever starts */
		real.shutdown(copy, SHUT_WR);
		LOG_EVENT_AT(EV_LINGER_STARTED, program_fd, &slots[slot].addresses, FIELD_NUM("unread", unread));
		slots[slot].announced = true;
	}
	publish(slot, copy, facts->inode);
	if (quiet)
		hand_quietly((doorbell_message)slot, waiting || lingering > LOAD(capacity) / 2);
	else
		ring((doorbell_message)slot);
	if (waiting || LOAD(thread_state) != RUNNING) /* or it ended meanwhile (see drain_loop) */
		STORE(linger_wanted, true);
}

/* The program's epoll sets forget the socket (epollset.h). One it never registered through the hook
 * is in none (sockets the library did not see made are shared, and never linger). */
static bool out_of_epoll_sets(int fd, const struct fd_facts *facts)
{
	return !(facts->flags & FLAG_IN_EPOLL) || epollset_remove_everywhere(fd);
}

/* close(): the decision on the program's own descriptor, then the socket moves to a private number.
 * The program's epoll sets must forget the socket first: see epollset.h. */
static bool hand_over(int fd, const struct fd_facts *facts, int unread)
{
	const char *unready = begin_handing();
	int copy = -1;
	if (unready)
		return skip(fd, fd, unready);
	if (!out_of_epoll_sets(fd, facts))
		unready = "epoll_instances";
	else if ((copy = private_copy(fd)) < 0)
		unready = "descriptors";
	if (unready) {
		end_handing();
		return skip(fd, fd, unready);
	}
	take_over(fd, copy);
	real.close(fd);
	linger_copy(copy, facts, fd, unread);
	end_handing();
	return true;
}

/* A forked child has the one thread that forked, though glibc's count says it has more if its parent
 * had: until it makes a thread itself, it starts its drain thread as a single-threaded process does,
 * when a socket first lingers. (Under ThreadSanitizer a thread started in a forked copy of a threaded
 * process can deadlock on the sanitizer's own allocator lock: the eager start did, in the hammer.)
 * Its writes are still counted (linger_write_starts): a thread glibc makes for itself (a SIGEV_THREAD
 * timer's) may run the program's code, and no hook sees it made. */
static bool forked_unthreaded;

/* May a thread of the program's close a socket where no call of the program's would start the drain
 * thread? A thread made with clone() (linger_unseen_threads) may, in a forked child too. */
static bool may_have_threads(void)
{
	return LOAD(linger_unseen_threads) || (!linger_single_threaded() && !LOAD(forked_unthreaded));
}

HOT void linger_prepare(void)
{
	if (config.linger == MODE_ON && LOAD(thread_state) != RUNNING && may_have_threads())
		linger_start_waiting();
}

void linger_note_program_thread(void)
{
	STORE(forked_unthreaded, false);
	if (config.linger == MODE_ON && LOAD(thread_state) == STOPPED && fdstate_sockets_seen() > 0)
		linger_start_waiting();
}

bool linger_holds(int fd)
{
	struct fd_entry *e = fdstate_entry(fd);
	return e && fdstate_origin(e) == FD_LINGERING && fdstate_still_same(fd);
}

/* linger_close() once finished_exchange() said no: out of line, so that the common close stays short. */
static COLD __attribute__((noinline)) bool linger_if_worth(int fd, struct fd_facts *facts)
{
	int unread;
	return worth_lingering(fd, fd, facts, &unread) && hand_over(fd, facts, unread);
}

HOT bool linger_close(int fd, struct fd_entry *e)
{
	struct fd_facts facts;
	fdstate_facts(e, &facts);
	if (!lingerable(&facts))
		return false;
	int saved = errno;
	bool taken = !finished_exchange(fd, &facts) && linger_if_worth(fd, &facts);
	errno = saved;
	return taken;
}

/* The socket stays open on the library's copy across the program's call, which cannot then send RST
 * or discard anything; the copy's close is then what close() would have been. The decision comes
 * after the call: fclose() writes out what its buffer holds before it closes. */
int linger_drop(int fd, int (*release)(void *), void *call)
{
	struct fd_facts facts;
	if (!may_linger(fd, &facts) || !(facts.inode = fdstate_identity(fd)))
		return release(call);
	int saved = errno;
	/* Only while fd names the socket can the program's epoll sets be made to forget it. A socket that
	 * then gets a plain close loses its registrations all the same, as it closes. */
	bool epoll_clear = config.linger != MODE_ON || out_of_epoll_sets(fd, &facts);
	int copy = private_copy(fd);
	if (copy < 0) {
		errno = saved;
		return release(call);
	}
	take_over(fd, copy);
	errno = saved;
	int rc = release(call);
	saved = errno;
	int unread;
	const char *unready = NULL;
	if (inode_of(fd) == facts.inode) { /* the call failed, and the program still holds its socket */
		fdstate_move(copy, fd);
		fdstate_set_origin(fd, facts.origin);
		real.close(copy);
	} else if (finished_exchange(copy, &facts) || !worth_lingering(copy, fd, &facts, &unread))
		close_plainly(copy);
	else if ((unready = !epoll_clear ? "epoll_instances" : begin_handing())) {
		skip(copy, fd, unready);
		close_plainly(copy);
	} else {
		linger_copy(copy, &facts, fd, unread);
		end_handing();
	}
	errno = saved;
	return rc;
}

/* --- the drain thread's side --- */

static void release(struct lingering *l)
{
	l->watched = l->registered = l->addressed = l->announced = l->quiet = false;
	unsigned int n = (unsigned int)(l - slots);
	__atomic_fetch_and(&taken[n / WORD_BITS], ~(1ull << (n % WORD_BITS)), __ATOMIC_ACQ_REL);
	STORE(l->socket, 0);
	__atomic_sub_fetch(&in_use, 1, __ATOMIC_ACQ_REL);
}

/* Really closes the slot's socket, if the copy still is it, and frees the slot. Its identity is
 * checked once more, even right after drain() or watch() checked it (a failed read may mean the
 * number is no longer ours), unless a read on it just succeeded: then only a closefrom() and a new
 * descriptor of the program's at that number within those reads could deceive it, as the reads
 * themselves already could. */
static void close_copy(struct lingering *l, bool just_read)
{
	int fd = fd_of(LOAD(l->socket));
	if (just_read || still_there(LOAD(l->socket))) {
		fdstate_forget(fd);
		if (l->registered) /* explicitly: a registration lives as long as the socket, not the descriptor */
			real.epoll_ctl(LOAD(epoll_fd), EPOLL_CTL_DEL, fd, NULL);
		real.close(fd);
	}
	release(l);
}

/* Logs how the linger ended (a quiet one is only counted) and really closes the socket. */
static void finish_after(struct lingering *l, bool just_read, enum log_event event, const char *key,
			 const char *value)
{
	if (l->quiet)
		__atomic_add_fetch(&quiet_lingers, 1, __ATOMIC_RELAXED);
	else
		LOG_EVENT_AT(event, l->program_fd, &l->addresses, FIELD_NUM("bytes", l->bytes),
			     FIELD_NUM("ms", fdstate_now_ms() - l->start_ms), FIELD_TEXT(key, value));
	close_copy(l, just_read);
}

static void finish(struct lingering *l, enum log_event event, const char *key, const char *value)
{
	finish_after(l, false, event, key, value);
}

/* The sockets still handed over when the drain ends (it lost its descriptors, or could not start, or
 * the program confines itself: WHY): each is closed, a linger cut short (limit=WHY) where it had
 * started, and for one that no drain took up yet, the plain close it now gets (reason=WHY); a quiet
 * one ends without a line either way. */
static void end_every(const char *why)
{
	for EACH_TAKEN(i) {
		struct lingering *l = &slots[i];
		uint64_t socket = published(l);
		if (!socket)
			continue;
		if (l->watched || l->quiet) { /* a quiet one, taken up or not, without a line */
			finish(l, EV_LINGER_TIMEOUT, "limit", why);
			continue;
		}
		if (log_enabled() && !l->addressed)
			socket_addresses_read(fd_of(socket), &l->addresses);
		LOG_EVENT_AT(EV_LINGER_SKIPPED, l->program_fd, &l->addresses, FIELD_TEXT("reason", why));
		close_copy(l, false);
	}
}

static bool drain(struct lingering *l);
static bool read_off(struct lingering *l);

/* Into the drain's epoll set; a quiet socket only once data came or SCAN_MS passed since the close:
 * until then the passes read it (pass_over_slots). */
static void register_for_events(struct lingering *l, uint32_t slot)
{
	struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = slot};
	if (l->quiet && fdstate_now_ms() - l->start_ms < SCAN_MS)
		return;
	if (real.epoll_ctl(LOAD(epoll_fd), EPOLL_CTL_ADD, fd_of(LOAD(l->socket)), &e) != 0)
		finish(l, EV_LINGER_DRAINED, "end", "error");
	else
		l->registered = true;
}

/* Takes the slot's socket up. From the slot alone, not from its message: a message may come late,
 * for a socket that ended meanwhile, when its slot holds the next one. */
static void watch(uint32_t slot)
{
	if (slot >= LINGER_MAX_LIMIT)
		return;
	struct lingering *l = &slots[slot];
	uint64_t socket = published(l);
	if (!socket || l->watched)
		return;
	l->watched = true;
	/* Read here, not in the program's close(): two system calls less there. The connection is up
	 * until this thread shuts it down (unless the program did: linger_copy); the peer may be gone
	 * by the time the linger ends. */
	if (log_enabled() && !l->addressed && !l->quiet)
		socket_addresses_read(fd_of(socket), &l->addresses);
	l->last_data_ms = fdstate_now_ms();
	if (!still_there(socket)) {
		release(l);
		return;
	}
	if (!l->announced && !l->quiet)
		LOG_EVENT_AT(EV_LINGER_STARTED, l->program_fd, &l->addresses, FIELD_NUM("unread", l->unread));
	/* The peer gets everything we wrote, then FIN. Failing, the connection has ended meanwhile (the
	 * program had sent its FIN, or the close had, and the peer's came back; or a reset): what is
	 * left to read says how. A quiet socket's FIN is out, and its peer's EOF often in by now. */
	bool ended = l->quiet || real.shutdown(fd_of(socket), SHUT_WR) != 0;
	if (!ended || read_off(l))
		register_for_events(l, slot);
}

/* False once the doorbell's writing end is gone (EOF): closed behind our back, so no close can ring
 * (and the pipe would wake the thread for good). */
static bool answer_doorbell(void)
{
	doorbell_message rung[64];
	ssize_t n;
	while ((n = real.read(LOAD(doorbell_read), rung, sizeof(rung))) > 0)
		for (size_t i = 0; i < (size_t)n / sizeof(rung[0]); i++)
			watch(rung[i]);
	return n != 0;
}

/* Takes up the sockets handed over without a message: quiet ones (linger_copy), and those whose
 * message did not fit into the pipe; and reads the quiet ones again, which join the epoll set once
 * data comes, or after SCAN_MS without their peer's EOF: a busy server's peers' EOFs are read in
 * batches, not each with a wakeup of its own, and a slow peer's is not polled for long. Runs on
 * every pass of the loop, which then wakes within PICKUP_MS (next_wait_ms; a message the full pipe
 * refused wakes it anyway): the flag may be set after the pipe was emptied. True if a quiet socket
 * is still read on the passes. */
static bool pass_over_slots(bool quiet_waiting)
{
	bool unrung_now = __atomic_exchange_n(&unrung, false, __ATOMIC_ACQ_REL);
	if (!unrung_now && !quiet_waiting)
		return false;
	quiet_waiting = false;
	for EACH_TAKEN(i) {
		struct lingering *l = &slots[i];
		if (!published(l))
			continue;
		if (!l->watched)
			watch((uint32_t)i);
		else if (l->quiet && !l->registered && drain(l))
			register_for_events(l, (uint32_t)i);
		quiet_waiting |= published(l) && l->quiet && !l->registered;
	}
	return quiet_waiting;
}

/* How long the drain thread waits for its next pass: PICKUP_MS while sockets come without a message
 * or quiet ones wait for their peers, so that a busy server's quiet closes are taken up in batches,
 * without waking the thread for each (hand_quietly). */
static int next_wait_ms(bool quiet_waiting)
{
	__atomic_store_n(&waits_long, true, __ATOMIC_SEQ_CST);
	if (quiet_waiting || __atomic_load_n(&unrung, __ATOMIC_SEQ_CST)) {
		STORE(waits_long, false);
		return PICKUP_MS;
	}
	return LOAD(in_use) ? SCAN_MS : IDLE_CHECK_MS;
}

/* Reads and discards what the peer sent, until EOF, an error, or nothing more for now. True while
 * the socket lingers on. */
static bool drain(struct lingering *l)
{
	uint64_t socket = LOAD(l->socket);
	if (!socket || !l->watched)
		return false;
	if (!still_there(socket)) {
		release(l); /* closed behind our back: the number is not ours to close */
		return false;
	}
	return read_off(l);
}

/* drain(), on a socket whose identity was checked right before (watch). */
static bool read_off(struct lingering *l)
{
	static char discard[65536];
	uint64_t socket = LOAD(l->socket);
	for (int round = 0; round < DRAIN_ROUNDS; round++) {
		ssize_t n = real.recv(fd_of(socket), discard, sizeof(discard), MSG_DONTWAIT);
		if (n > 0) {
			if (l->quiet) { /* data after the close, which a plain one would have answered with RST */
				l->quiet = false;
				if (log_enabled() && !l->addressed)
					socket_addresses_read(fd_of(socket), &l->addresses);
				LOG_EVENT_AT(EV_LINGER_STARTED, l->program_fd, &l->addresses, FIELD_NUM("unread", 0));
			}
			l->bytes += n;
			l->last_data_ms = fdstate_now_ms();
		} else if (n == 0) {
			finish_after(l, true, EV_LINGER_DRAINED, "end", "eof");
			return false;
		} else if (errno != EAGAIN && errno != EINTR) {
			finish(l, EV_LINGER_DRAINED, "end", errno == ECONNRESET ? "reset" : "error");
			return false;
		} else
			return true;
	}
	return true;
}

/* Set by exit() once its grace is over: every socket still lingering ends, and says so. */
static bool exiting;

static void enforce_limits(void)
{
	uint32_t now = fdstate_now_ms();
	for EACH_TAKEN(i) {
		struct lingering *l = &slots[i];
		if (!LOAD(l->socket) || !l->watched)
			continue;
		if (LOAD(exiting))
			finish(l, EV_LINGER_TIMEOUT, "limit", "exit");
		else if (now - l->start_ms >= config.linger_ms)
			finish(l, EV_LINGER_TIMEOUT, "limit", "total");
		else if (now - l->last_data_ms >= config.linger_idle_ms)
			finish(l, EV_LINGER_TIMEOUT, "limit", "idle");
	}
}

static bool descriptors_intact(void)
{
	return ownfd_intact(&epoll_fd) && ownfd_intact(&doorbell_read) && ownfd_intact(&doorbell_write);
}

static void *drain_loop(void *unused)
{
	(void)unused;
	/* A batch thread does not preempt the thread that woke it: the program's close() returns
	 * before the drain runs, instead of waiting for it (docs/PERFORMANCE.md, row 6). */
	pthread_setschedparam(pthread_self(), SCHED_BATCH, &(struct sched_param){0});
	struct epoll_event events[64];
	/* Until the first close lingers. A waiting thread costs the program nothing. */
	int state;
	while ((state = LOAD(descriptors)) != DESCRIPTORS_READY && !LOAD(config.confined))
		syscall(SYS_futex, &descriptors, FUTEX_WAIT_PRIVATE, state, NULL, NULL, 0);
	uint32_t last_check = fdstate_now_ms();
	/* A thread that starts anew after one ended may find slots whose messages went to its pipe. */
	STORE(unrung, true);
	bool quiet_waiting = false;
	/* closefrom() closes our descriptors without a word, and their numbers may then be the
	 * program's: looked at before each wait (a thread started anew may find them gone already) and
	 * after it (the instance lives on while we wait in it). Gone, the thread gives up, see below, and
	 * the next connect() or accept() starts anew. */
	while (!LOAD(config.confined) && descriptors_intact()) {
		/* Not libc's epoll_wait: another preload's (libfaketime's) may stretch the timeout. */
		int n = clock_epoll_wait(LOAD(epoll_fd), events, 64, next_wait_ms(quiet_waiting));
		STORE(waits_long, false);
		if ((n < 0 && errno != EINTR) || !descriptors_intact())
			break;
		bool bell_gone = false;
		for (int i = 0; i < n; i++) {
			if (events[i].data.u32 == DOORBELL)
				bell_gone |= !answer_doorbell();
			else if (events[i].data.u32 < LINGER_MAX_LIMIT)
				drain(&slots[events[i].data.u32]);
		}
		if (bell_gone)
			break;
		quiet_waiting = pass_over_slots(quiet_waiting);
		if (fdstate_now_ms() - last_check >= SCAN_MS) {
			enforce_limits();
			last_check = fdstate_now_ms();
		}
	}
	/* No close hands a socket over from here on; those under way publish theirs first (bounded:
	 * one may be a signal handler's that interrupted the program's own). */
	__atomic_store_n(&descriptors, DESCRIPTORS_ENDING, __ATOMIC_SEQ_CST);
	for (int i = 0; __atomic_load_n(&handing, __ATOMIC_SEQ_CST) && i < START_WAIT_YIELDS; i++)
		sched_yield();
	end_every(LOAD(config.confined) ? "seccomp" : "descriptors");
	if (LOAD(config.confined)) {
		/* A thread's end makes system calls of its own (glibc's madvise, its exit), which a filter
		 * over every thread (TSYNC) would refuse: it stays, blocked for good in a wait it entered
		 * before the filter (every signal is blocked here, so nothing ends that wait). */
		static int forever;
		drop_descriptors();
		STORE(thread_state, PARKED);
		for (;;)
			syscall(SYS_futex, &forever, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	}
	STORE(thread_state, STOPPED); /* first: a close must not make descriptors no thread will serve */
	drop_descriptors();
	return NULL;
}

/* The sockets handed over for a thread that could not start: each gets its FIN and is closed, as
 * when the thread ends (see drain_loop). */
static void end_all(void)
{
	if (ownfd_intact(&doorbell_read))
		answer_doorbell();
	STORE(unrung, true); /* and the slots whose message is not in the pipe */
	pass_over_slots(false);
	end_every("descriptors");
}

void linger_start_waiting(void)
{
	if (in_vfork_child() || LOAD(config.confined))
		return;
	int saved = errno; /* connect()'s EINPROGRESS */
	STORE(linger_wanted, false);
	drain_running();
	errno = saved;
}

bool linger_gives_up_at_shutdown(int fd, int how)
{
	struct fd_facts facts;
	struct kernel_tcp_info t;
	if (how == SHUT_RD || config.linger == MODE_OFF || !may_linger(fd, &facts) ||
	    facts.flags & FLAG_SHUT_WR || !may_give_up(&facts))
		return false; /* no system call for any other shutdown */
	int saved = errno;
	socklen_t len = tcp_info_of(fd, &t);
	bool given_up = len && gives_up(&t, TCP_INFO_HAS(len, data_segs_out), &facts);
	errno = saved;
	return given_up;
}

/* Sleeps in steps of step_ms while the drain thread is in state (and, if busy, sockets linger), for
 * limit_ms at most. */
static void wait_while(int state, bool busy, uint32_t limit_ms, unsigned int step_ms)
{
	uint32_t start = fdstate_now_ms();
	while (LOAD(thread_state) == state && (!busy || LOAD(in_use)) && fdstate_now_ms() - start < limit_ms)
		clock_sleep_ms(step_ms);
}

void linger_stand_down(void)
{
	STORE(linger_wanted, false);
	wait_while(STARTING, false, 3 * SCAN_MS, 1); /* another close is starting it: it parks at once */
	if (LOAD(thread_state) != RUNNING)
		return;
	/* Wake it, from its wait for descriptors or from epoll_wait (a message for no slot). */
	syscall(SYS_futex, &descriptors, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	if (LOAD(descriptors) == DESCRIPTORS_READY)
		ring(UINT32_MAX); /* no slot's */
	wait_while(RUNNING, false, 3 * SCAN_MS, 1);
	if (LOAD(thread_state) == PARKED)
		clock_sleep_ms(2); /* from its store to inside its wait */
}

/* --- fork and exit --- */

void linger_after_fork_child(void)
{
	/* Not only the taken ones: one may have been claimed, not yet marked, as we forked. */
	for (unsigned int i = 0; i < LOAD(high_water); i++) {
		uint64_t socket = LOAD(slots[i].socket);
		if (!socket)
			continue;
		if (socket != RESERVED && still_there(socket)) {
			fdstate_forget(fd_of(socket));
			real.close(fd_of(socket));
		}
		slots[i] = (struct lingering){0};
	}
	memset(taken, 0, sizeof(taken));
	in_use = high_water = handing = 0;
	quiet_lingers = 0;
	unrung = waits_long = linger_wanted = false;
	drop_descriptors();
	STORE(thread_state, STOPPED);
	STORE(forked_unthreaded, true);
}

uint64_t linger_quiet_count(void)
{
	return __atomic_load_n(&quiet_lingers, __ATOMIC_RELAXED);
}

void linger_finish(void)
{
	if (LOAD(config.confined)) /* its waits are system calls the program's filter may refuse */
		return;
	if (LOAD(linger_wanted))
		linger_start_waiting();
	wait_while(RUNNING, true, EXIT_GRACE_MS, 5);
	/* The kernel would reset what is left without a word: the drain thread ends each with a line of
	 * its own (it checks its limits every SCAN_MS while sockets linger). */
	if (LOAD(thread_state) != RUNNING || !LOAD(in_use))
		return;
	STORE(exiting, true);
	wait_while(RUNNING, true, 3 * SCAN_MS, 5);
}
