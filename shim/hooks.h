/* What the hook files (hooks_fd.c, hooks_io.c, hooks_stdio.c) share. */
#pragma once
#include "closewait.h"
#include "fdstate.h"
#include "linger.h"
#include "vfork.h"

/* fd became a connection this process made: connect() succeeded or goes on in the background
 * (EINPROGRESS, or EINTR: the kernel keeps connecting after the signal), or sendto()/sendmsg() with
 * MSG_FASTOPEN connected it. From here it is guarded and may linger like any connected socket. */
void hooks_note_connected(int fd);

/* CALL on fd, unless the CLOSE_WAIT guard refuses it (then -1, errno EPIPE); on a tracked TCP socket
 * counted while it is in the kernel, for a lingering close in another thread (see
 * linger_write_starts), and after it wrote data, noted as the program's last word (fdstate_note_wrote).
 * The rest are the fields of the write's struct write_size, for the guard's
 * log, built only when it looks. A vfork child's number may name another socket than the parent's,
 * and the table and the log are the parent's: it writes as without the library. */
#define GUARDED_WRITE(fd, flags, call, ...) GUARDED_WRITE_ON(fdstate_entry(fd), fd, flags, call, __VA_ARGS__)
/* The same, with fd's entry (fdstate_entry) looked up already. */
#define GUARDED_WRITE_ON(entry, fd, flags, call, ...)                                                 \
	({                                                                                            \
		__typeof__(call) result_ = -1;                                                        \
		struct fd_entry *entry_ = in_vfork_child() ? NULL : (entry);                          \
		struct write_note note_;                                                              \
		if (!(entry_ && closewait_due(entry_, &note_) &&                                      \
		      closewait_refuses((fd), note_, (flags), &(struct write_size){__VA_ARGS__}))) {  \
			LINGER_COUNTED_WRITE struct write_token writing_ =                            \
				entry_ ? linger_write_starts(entry_) : (struct write_token){NULL, 0}; \
			result_ = (call);                                                             \
			if (entry_ && result_ > 0)                                                    \
				fdstate_note_wrote(entry_, (size_t)result_);                          \
		}                                                                                     \
		result_;                                                                              \
	})
