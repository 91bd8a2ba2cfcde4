/* The CLOSE_WAIT guard: refuse the write that the kernel would accept and the peer would answer
 * with RST, so that the program's own error path runs instead of the data vanishing. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* True if the write of len bytes on fd must fail; then errno is EPIPE and SIGPIPE has been raised on
 * this thread unless flags has MSG_NOSIGNAL, exactly as the kernel does one write later.
 * False leaves errno untouched. */
bool closewait_refuses(int fd, size_t len, int flags);
