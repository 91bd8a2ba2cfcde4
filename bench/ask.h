/* What the lingering close asks the kernel before it closes after a finished exchange (shim/linger.c,
 * finished_exchange): one getsockopt(SO_MEMINFO), and ioctl(SIOCOUTQNSD) if some of what was sent is
 * not yet acknowledged. Rows 7b and 7c ask it without the library. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/sockios.h>

/* False if a question failed (errno says why). */
static inline bool ask_what_a_close_asks(int fd)
{
	enum { WMEM_QUEUED = 5 }; /* SK_MEMINFO_WMEM_QUEUED */
	uint32_t mem[8];
	int unsent;
	return getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &(socklen_t){sizeof(mem)}) == 0 &&
	       (mem[WMEM_QUEUED] == 0 || ioctl(fd, SIOCOUTQNSD, &unsent) == 0);
}
