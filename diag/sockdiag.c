#include "sockdiag.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Large enough for any batch the kernel sends in one datagram; a truncated one is an error. */
#define RECEIVE_BUFFER (64 * 1024)

static int send_dump_request(int fd, int family, uint32_t states, uint32_t seq)
{
	struct {
		struct nlmsghdr header;
		struct inet_diag_req_v2 request;
	} message = {
		.header = {
			.nlmsg_len = sizeof(message),
			.nlmsg_type = SOCK_DIAG_BY_FAMILY,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
			.nlmsg_seq = seq,
		},
		.request = {
			.sdiag_family = (uint8_t)family,
			.sdiag_protocol = IPPROTO_TCP,
			.idiag_states = states,
			/* tcp_info (for tcpi_last_data_recv) and the memory counters (for sk_drops) */
			.idiag_ext = (1 << (INET_DIAG_INFO - 1)) | (1 << (INET_DIAG_SKMEMINFO - 1)),
		},
	};
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	ssize_t sent = sendto(fd, &message, sizeof(message), 0, (struct sockaddr *)&kernel, sizeof(kernel));
	return sent == (ssize_t)sizeof(message) ? 0 : -1;
}

static void copy_address(struct sockaddr_in6 *to, int family, const __be32 address[4], __be16 port)
{
	memset(to, 0, sizeof(*to));
	if (family == AF_INET) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)to;
		v4->sin_family = AF_INET;
		v4->sin_port = port;
		memcpy(&v4->sin_addr, address, sizeof(v4->sin_addr));
	} else {
		to->sin6_family = AF_INET6;
		to->sin6_port = port;
		memcpy(&to->sin6_addr, address, sizeof(to->sin6_addr));
	}
}

/* The attributes after an inet_diag_msg: the ones asked for in idiag_ext. A kernel's tcp_info may be
 * shorter or longer than ours; a field is only taken if the kernel's covers it. */
static void read_attributes(struct diag_socket *s, const struct nlmsghdr *header, const struct inet_diag_msg *msg)
{
	const char *at = (const char *)msg + NLMSG_ALIGN(sizeof(*msg));
	long left = (long)header->nlmsg_len - (long)NLMSG_LENGTH(sizeof(*msg));
	while (left >= (long)NLA_HDRLEN) {
		const struct nlattr *attribute = (const struct nlattr *)at;
		if (attribute->nla_len < NLA_HDRLEN || attribute->nla_len > left)
			break;
		const void *payload = at + NLA_HDRLEN;
		size_t size = attribute->nla_len - NLA_HDRLEN;
		int type = attribute->nla_type & NLA_TYPE_MASK;
		if (type == INET_DIAG_INFO &&
		    size >= offsetof(struct tcp_info, tcpi_last_data_recv) + sizeof(uint32_t)) {
			memcpy(&s->last_recv_ms, (const char *)payload + offsetof(struct tcp_info, tcpi_last_data_recv),
			       sizeof(uint32_t));
			s->has_last_recv = true;
		} else if (type == INET_DIAG_SKMEMINFO && size >= (SK_MEMINFO_DROPS + 1) * sizeof(uint32_t)) {
			memcpy(&s->drops, (const char *)payload + SK_MEMINFO_DROPS * sizeof(uint32_t), sizeof(uint32_t));
			s->has_drops = true;
		}
		at += NLA_ALIGN(attribute->nla_len);
		left -= NLA_ALIGN(attribute->nla_len);
	}
}

static int append(struct socket_table *table, const struct nlmsghdr *header)
{
	const struct inet_diag_msg *msg = NLMSG_DATA(header);
	if (header->nlmsg_len < NLMSG_LENGTH(sizeof(*msg)))
		return 0; /* not one we can read: skip it rather than guess */
	if (table->count == table->capacity) {
		size_t capacity = table->capacity ? table->capacity * 2 : 64;
		struct diag_socket *grown = realloc(table->sockets, capacity * sizeof(*grown));
		if (!grown)
			return -1;
		table->sockets = grown;
		table->capacity = capacity;
	}
	struct diag_socket *s = &table->sockets[table->count++];
	memset(s, 0, sizeof(*s));
	s->state = msg->idiag_state;
	copy_address(&s->local, msg->idiag_family, msg->id.idiag_src, msg->id.idiag_sport);
	copy_address(&s->peer, msg->idiag_family, msg->id.idiag_dst, msg->id.idiag_dport);
	s->inode = msg->idiag_inode;
	s->uid = msg->idiag_uid;
	s->rqueue = msg->idiag_rqueue;
	s->wqueue = msg->idiag_wqueue;
	read_attributes(s, header, msg);
	return 0;
}

/* Reads one family's dump to its NLMSG_DONE. */
static int read_dump(int fd, uint32_t seq, struct socket_table *table)
{
	static char buffer[RECEIVE_BUFFER] __attribute__((aligned(NLMSG_ALIGNTO)));
	for (;;) {
		struct iovec io = {.iov_base = buffer, .iov_len = sizeof(buffer)};
		struct msghdr received = {.msg_iov = &io, .msg_iovlen = 1};
		ssize_t got = recvmsg(fd, &received, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -1;
		if (received.msg_flags & MSG_TRUNC) {
			errno = EMSGSIZE;
			return -1;
		}
		size_t left = (size_t)got;
		for (const struct nlmsghdr *header = (const struct nlmsghdr *)buffer; NLMSG_OK(header, left);
		     header = NLMSG_NEXT(header, left)) {
			if (header->nlmsg_seq != seq)
				continue;
			if (header->nlmsg_type == NLMSG_DONE)
				return 0;
			if (header->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *error = NLMSG_DATA(header);
				errno = header->nlmsg_len >= NLMSG_LENGTH(sizeof(*error)) && error->error ? -error->error : EPROTO;
				return -1;
			}
			if (header->nlmsg_type == SOCK_DIAG_BY_FAMILY && append(table, header) != 0)
				return -1;
		}
	}
}

int sockdiag_read(struct socket_table *table, uint32_t states)
{
	static const int families[] = {AF_INET, AF_INET6};
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -1;
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		uint32_t seq = (uint32_t)i + 1;
		if (send_dump_request(fd, families[i], states, seq) != 0 || read_dump(fd, seq, table) != 0) {
			int saved = errno;
			/* a kernel without IPv6 has no table for it: that is an empty one, not a failure */
			if (families[i] == AF_INET6 && (saved == ENOENT || saved == EAFNOSUPPORT))
				continue;
			close(fd);
			errno = saved;
			return -1;
		}
	}
	close(fd);
	return 0;
}

void socket_table_free(struct socket_table *table)
{
	free(table->sockets);
	*table = (struct socket_table){0};
}
