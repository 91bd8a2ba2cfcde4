/* The kernel's TCP socket table, read as ss(8) reads it: netlink sock_diag, one dump per address
 * family, of the current network namespace. Only what tcprare-doctor judges is kept. */
#pragma once
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct diag_socket {
	int state;                       /* TCP_CLOSE_WAIT or TCP_LISTEN, as in netinet/tcp.h */
	struct sockaddr_in6 local, peer; /* an IPv4 address fits a sockaddr_in6, as in shim/log.h */
	uint64_t inode;                  /* the sockfs inode: "socket:[N]" in /proc/PID/fd */
	uint32_t uid;                    /* who created the socket */
	/* A listener: queue = connections waiting to be accepted, backlog = the limit the kernel applied.
	 * A connection: unread = received bytes the program has not read, unsent = written bytes the
	 * peer has not acknowledged. */
	uint32_t rqueue, wqueue;
	bool has_last_recv;
	uint32_t last_recv_ms; /* since data last arrived (tcp_info's tcpi_last_data_recv) */
	bool has_drops;
	uint32_t drops; /* the socket's own drop count (sk_drops, SK_MEMINFO_DROPS) */
};

/* In CLOSE_WAIT the peer's FIN takes one sequence number, which rqueue counts until the program reads
 * the end of the data (its read returns 0): rqueue 0 means it has, and the rest is data unread. */
static inline bool closewait_eof_read(const struct diag_socket *s)
{
	return s->rqueue == 0;
}
static inline uint32_t closewait_unread(const struct diag_socket *s)
{
	return s->rqueue ? s->rqueue - 1 : 0;
}

struct socket_table {
	struct diag_socket *sockets;
	size_t count, capacity;
};

/* Appends every TCP socket, IPv4 and IPv6, whose state is in states (a mask of 1 << TCP_*) to table.
 * 0, or -1 with errno set (and the table holding what was read before the failure). */
int sockdiag_read(struct socket_table *table, uint32_t states);
void socket_table_free(struct socket_table *table);
