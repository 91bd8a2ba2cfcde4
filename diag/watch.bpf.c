// SPDX-License-Identifier: (MIT OR GPL-2.0)
/* tcprare-watch's kernel half: tracepoints only (tp_btf), since that is what loads everywhere the
 * watcher is meant to run (kprobes, fentry and LSM programs do not on every kernel). Nothing here
 * runs per write, per connection or per packet delivered: only on resets and dropped packets, so
 * attaching costs a busy host next to nothing. A program on sock:inet_sock_set_state (ten calls per
 * connection) noting who closed each connection cost 1-2 us a connection, 10-15% of a loopback
 * connection's cost: what it gave (a closer's pid, the quiet before a FIN) is found otherwise.
 * Each event goes to watch.c as a struct watch_event. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "watch.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

/* Set by watch.c before loading: 0 watches every network namespace, else only this one's inode. */
const volatile __u32 netns_only = 0;
/* For ages in jiffies (rcv_tstamp, lrcvtime); a kernel whose config libbpf cannot read gets 250. */
extern unsigned int CONFIG_HZ __kconfig __weak;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* When each overflowing listener last sent a record: at most ten a second each, watch.c sums. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} overflow_sent SEC(".maps");

static __always_inline __u32 netns_of(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

static __always_inline bool watched(const struct sock *sk)
{
	return !netns_only || netns_of(sk) == netns_only;
}

/* The addresses, the namespace and the socket's inode. The local port from inet_sport: a socket
 * closed with unread input is already unhashed when its RST goes out, and its skc_num is zero. */
static __always_inline void describe(struct watch_event *e, const struct sock *sk)
{
	struct socket *sock = BPF_CORE_READ(sk, sk_socket);
	e->sock = (__u64)(unsigned long)sk;
	e->inode = 0;
	if (sock) {
		struct socket_alloc *sa = container_of(sock, struct socket_alloc, socket);
		e->inode = BPF_CORE_READ(sa, vfs_inode.i_ino);
	}
	e->netns = netns_of(sk);
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->local_port = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	e->peer_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__builtin_memset(e->local_addr, 0, sizeof(e->local_addr));
	__builtin_memset(e->peer_addr, 0, sizeof(e->peer_addr));
	if (e->family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->local_addr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e->peer_addr, sk, __sk_common.skc_v6_daddr);
	} else {
		BPF_CORE_READ_INTO((__u32 *)e->local_addr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)e->peer_addr, sk, __sk_common.skc_daddr);
	}
}

/* Events the ring buffer had no room for (watch.c fell behind): said at exit. */
__u64 events_dropped = 0;

static __always_inline struct watch_event *reserve(__u32 kind, const struct sock *sk)
{
	struct watch_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&events_dropped, 1);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = kind;
	describe(e, sk);
	return e;
}

static __always_inline void from_current(struct watch_event *e)
{
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/* For a socket in CLOSE_WAIT, the quiet before the FIN, as the library's guard measures it: time
 * since data last went either way, unless data the program has not read came before the FIN (what
 * the peer said as it closed): then since our own last data only. Worked out when the reset comes,
 * from what the kernel keeps anyway, so that nothing need be noted for every connection that
 * enters CLOSE_WAIT: the FIN was the last segment with an ACK (rcv_tstamp; the peer sent nothing
 * after it but its RST), our last data before it is the newest the peer acknowledged (rack.mstamp:
 * what we wrote since is what is lost), the last data received lrcvtime (a bare FIN is not data). */
static __always_inline __u32 quiet_before_fin(const struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u64 hz = CONFIG_HZ ? CONFIG_HZ : 250;
	__u32 now = (__u32)bpf_jiffies64();
	__u64 fin_age = (__u64)(now - BPF_CORE_READ(tp, rcv_tstamp)) * 1000000 / hz;
	__u64 received_age = (__u64)(now - BPF_CORE_READ(tp, inet_conn.icsk_ack.lrcvtime)) * 1000000 / hz;
	__u64 acked_sent = BPF_CORE_READ(tp, rack.mstamp), now_us = bpf_ktime_get_ns() / 1000;
	__u32 unread = BPF_CORE_READ(tp, rcv_nxt) - BPF_CORE_READ(tp, copied_seq) - 1;
	__u64 data_age = received_age;
	if (acked_sent && acked_sent < now_us) {
		__u64 sent_age = now_us - acked_sent;
		if (unread > 0 || sent_age < data_age)
			data_age = sent_age;
	}
	return data_age > fin_age ? (__u32)((data_age - fin_age) / 1000) : 0;
}

/* The peer reset a connection it had closed: whatever we sent since and it never acknowledged is
 * lost. A reset that finds the socket owned by a process (locked by a system call on it) waits in
 * the socket's backlog and is processed by that process as it releases the lock: on loopback, the
 * writer itself, within its write. Otherwise (a softirq on whatever ran) the current process is only
 * a candidate, which watch.c checks against /proc. */
SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(on_receive_reset, struct sock *sk)
{
	int state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if ((state != TCP_CLOSE_WAIT && state != TCP_LAST_ACK) || !watched(sk))
		return 0;
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u32 lost = BPF_CORE_READ(tp, snd_nxt) - BPF_CORE_READ(tp, snd_una);
	if (state == TCP_LAST_ACK && lost > 0)
		lost--; /* our own FIN */
	if (lost == 0)
		return 0;
	struct watch_event *e = reserve(WATCH_CLOSEWAIT_LOST, sk);
	if (!e)
		return 0;
	from_current(e);
	e->pid_holds = BPF_CORE_READ(sk, sk_lock.owned) != 0;
	e->bytes = lost;
	e->quiet_ms = quiet_before_fin(sk);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* close() with unread input (RFC 2525 2.17): the RST goes out from the closing process's own
 * context, and the bytes are what it left unread. Or data that arrived after a close (TCP's
 * "abort on data"): the RST goes out in a softirq, the socket orphaned, no process at hand (watch.c
 * names the one listening on its local port); the bytes are those of the segment that drew it. Kernels before 6.10 pass no reason: there the event
 * is not reported. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	if (!bpf_core_enum_value_exists(enum sk_rst_reason, SK_RST_REASON_TCP_ABORT_ON_CLOSE))
		return 0;
	int reason = (int)ctx[2];
	bool at_close = reason == bpf_core_enum_value(enum sk_rst_reason, SK_RST_REASON_TCP_ABORT_ON_CLOSE);
	bool after_close = reason == bpf_core_enum_value(enum sk_rst_reason, SK_RST_REASON_TCP_ABORT_ON_DATA);
	if (!sk || (!at_close && !after_close) || !watched(sk))
		return 0;
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u32 unread;
	if (at_close) {
		unread = BPF_CORE_READ(tp, rcv_nxt) - BPF_CORE_READ(tp, copied_seq);
		/* SOCK_DONE: the peer's FIN came, and counts one in rcv_nxt that is no unread byte. */
		__u64 done = 1ULL << bpf_core_enum_value(enum sock_flags, SOCK_DONE);
		if (unread > 0 && (BPF_CORE_READ(sk, __sk_common.skc_flags) & done))
			unread--;
	} else {
		struct tcp_skb_cb cb;
		if (!skb || bpf_probe_read_kernel(&cb, sizeof(cb), &skb->cb) != 0)
			return 0;
		unread = cb.end_seq - cb.seq;
	}
	struct watch_event *e = reserve(WATCH_LINGER_RESET, sk);
	if (!e)
		return 0;
	if (at_close) {
		from_current(e);
		e->pid_holds = 1; /* the closing process: its descriptor is gone already */
	} else {
		e->after_close = 1;
	}
	e->bytes = unread;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline __u64 drops_of(const struct sock *sk)
{
	__u64 drops = (__u32)BPF_CORE_READ(sk, sk_drops.counter);
	if (bpf_core_field_exists(sk->sk_drop_counters)) {
		struct numa_drop_counters *numa = BPF_CORE_READ(sk, sk_drop_counters);
		if (numa)
			drops += (__u32)BPF_CORE_READ(numa, drops0.counter) +
				 (__u32)BPF_CORE_READ(numa, drops1.counter);
	}
	return drops;
}

/* A dropped packet whose listener's accept queue is over its backlog: the final ACK of a handshake
 * the kernel ignored. The SYNs it drops for the same reason pass no tracepoint, but add to the
 * listener's sk_drops, which the record carries. rx_sk is the socket the packet reached (6.12+). */
SEC("tp_btf/kfree_skb")
int BPF_PROG(on_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason,
	     struct sock *rx_sk)
{
	/* Every dropped packet of the host comes here: direct loads (a typed pointer), no helper call,
	 * until it is surely an overflowing listener's. */
	if (!rx_sk || rx_sk->__sk_common.skc_state != TCP_LISTEN)
		return 0;
	__u32 queue = rx_sk->sk_ack_backlog, backlog = rx_sk->sk_max_ack_backlog;
	if (queue <= backlog || rx_sk->sk_protocol != IPPROTO_TCP || !watched(rx_sk))
		return 0;
	__u64 key = (__u64)(unsigned long)rx_sk, now = bpf_ktime_get_ns();
	__u64 *sent = bpf_map_lookup_elem(&overflow_sent, &key);
	if (sent && now - *sent < 100000000ULL)
		return 0;
	bpf_map_update_elem(&overflow_sent, &key, &now, BPF_ANY);
	struct watch_event *e = reserve(WATCH_ACCEPT_OVERFLOW, rx_sk);
	if (!e)
		return 0;
	e->queue = queue;
	e->backlog = backlog;
	e->drops = drops_of(rx_sk);
	bpf_ringbuf_submit(e, 0);
	return 0;
}
