/* What watch.bpf.c hands to watch.c through the ring buffer: one record per event, in the kernel's
 * words. Included by both sides, so it uses the kernel's fixed-width types only. */
#pragma once

enum watch_kind {
	WATCH_CLOSEWAIT_LOST = 1, /* a write into CLOSE_WAIT, answered by the peer's RST */
	WATCH_LINGER_RESET,       /* close() with unread input: the kernel sent RST */
	WATCH_ACCEPT_OVERFLOW,    /* a listener's accept queue was full: a final ACK was dropped */
};

struct watch_event {
	__u64 sock;   /* the struct sock's address: an overflowing listener's identity between records */
	__u64 inode;  /* the socket's inode (socket:[N] in /proc/PID/fd), 0 if it has none left */
	__u32 kind;   /* enum watch_kind */
	__u32 pid;    /* the process in whose context it happened (a candidate owner), 0 if none */
	__u32 pid_holds;   /* 1: that process surely holds the socket (it closed it, or held its lock) */
	__u32 after_close; /* linger: the RST answered data that came after the close, not unread data */
	char comm[16];
	__u32 netns;  /* the network namespace's inode */
	__u16 family; /* AF_INET or AF_INET6 */
	__u16 local_port, peer_port;
	__u8 local_addr[16], peer_addr[16];
	__u32 bytes;    /* closewait: bytes the RST threw away; linger: bytes unread at close */
	__u32 quiet_ms; /* closewait: how long the connection had been quiet when the peer's FIN came */
	__u32 queue, backlog; /* accept_queue: the listener's queue and the backlog the kernel applied */
	__u64 drops;          /* accept_queue: the listener's own drop count (sk_drops) so far */
};
