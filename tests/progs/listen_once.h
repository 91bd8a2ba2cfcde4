/* Shared by the test programs that need the library to log: a listen() on a fresh loopback TCP
 * socket makes it log one "backlog raised" line (under TCPRARE_BACKLOG=max, the default). */
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static inline void listen_once(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return;
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) == 0)
		listen(s, 1);
	close(s);
}
