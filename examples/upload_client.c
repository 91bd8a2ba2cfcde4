/* upload_client: uploads a request body, then reads the whole answer, as an HTTP client posting a
 * file does. Against a server that answers early and closes, the answer arrives cut short and the
 * read fails with "connection reset by peer" - unless the server's close lingers.
 *
 *   upload_client [-6] [-u UPLOAD_BYTES] PORT
 * Prints "expected=N received=M error=none|ECONNRESET|..."; exits 0 only if the whole answer came. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int ipv6 = 0, opt;
	/* 16 MiB: more than the client's send buffer can grow to (net.ipv4.tcp_wmem's 4 MiB) plus the
	 * server's receive buffer, so the upload cannot all be queued before the server's close; a
	 * smaller one sometimes is, the whole answer is read first, and the RST then loses nothing. */
	size_t upload = 16 << 20;
	while ((opt = getopt(argc, argv, "6u:")) != -1) {
		if (opt == '6')
			ipv6 = 1;
		else if (opt == 'u')
			upload = strtoul(optarg, NULL, 10);
		else
			break;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: upload_client [-6] [-u UPLOAD_BYTES] PORT\n");
		return 2;
	}
	int port = atoi(argv[optind]);
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT, .sin6_port = htons(port)};
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(port)};
	struct sockaddr *addr = ipv6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4;
	int fd = socket(addr->sa_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, addr, ipv6 ? sizeof(a6) : sizeof(a4)) != 0) {
		perror("upload_client: connect");
		return 2;
	}
	char buf[65536];
	int n = snprintf(buf, sizeof(buf), "UPLOAD %zu\n", upload);
	memset(buf + n, 'u', sizeof(buf) - (size_t)n);
	const char *error = "none";
	/* The upload may fail once the server has closed: then the answer is read all the same. */
	for (size_t sent = 0; sent < upload;) {
		ssize_t w = send(fd, buf, upload - sent < sizeof(buf) ? upload - sent : sizeof(buf), MSG_NOSIGNAL);
		if (w <= 0) {
			error = errno == ECONNRESET ? "ECONNRESET" : strerror(errno);
			break;
		}
		sent += (size_t)w;
	}
	size_t expected = 0, received = 0, header = 0;
	char line[64];
	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r < 0)
			error = errno == ECONNRESET ? "ECONNRESET" : strerror(errno);
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++) {
			if (header < sizeof(line) - 1 && (header == 0 || line[header - 1] != '\n'))
				line[header++] = buf[i];
			else
				received++;
		}
		line[header] = '\0';
		if (!expected)
			sscanf(line, "ANSWER %zu", &expected);
	}
	printf("expected=%zu received=%zu error=%s\n", expected, received, error);
	close(fd);
	return expected > 0 && received == expected ? 0 : 1;
}
