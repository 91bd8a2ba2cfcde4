/* What the hook files (hooks_fd.c, hooks_io.c, hooks_stdio.c) share. */
#pragma once
#include "closewait.h"
#include "linger.h"

/* fd became a connection this process made: connect() succeeded or goes on in the background
 * (EINPROGRESS, or EINTR: the kernel keeps connecting after the signal), or sendto()/sendmsg() with
 * MSG_FASTOPEN connected it. From here it is guarded and may linger like any connected socket. */
void hooks_note_connected(int fd);

/* CALL, unless the CLOSE_WAIT guard refuses it (then -1, errno EPIPE); counted while it is in the
 * kernel, for a lingering close in another thread (see linger_write_starts). The rest are the
 * fields of the write's struct write_size, for the guard's log. */
#define GUARDED_WRITE(fd, flags, call, ...)                                                           \
	({                                                                                            \
		__typeof__(call) result_ = -1;                                                        \
		if (!(closewait_watches(fd) &&                                                        \
		      closewait_refuses((fd), (flags), &(struct write_size){__VA_ARGS__}))) {         \
			LINGER_COUNTED_WRITE struct write_token writing_ = linger_write_starts(fd);   \
			result_ = (call);                                                             \
		}                                                                                     \
		result_;                                                                              \
	})
