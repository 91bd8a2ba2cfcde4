/* This process and the ones it made: which process the library's table describes, and whether a
 * socket is also open in another process, where no hook could have told us.
 *
 * fork() runs the library's fork handlers, and posix_spawn, system and popen are interposed, so the
 * table marks the sockets they share. But _Fork(), glibc's clone() and the fork and clone system
 * calls made with syscall() run no handlers: a child made so holds copies of the parent's sockets
 * that the table does not know about, in the parent and in the child. Before a lingering close
 * shuts down or reads a socket, these two checks find out what the hooks could not see. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Records this process as the one the table describes: at load, and in a child of fork(). */
void process_note_self(void);

/* A child this process made with fork() or posix_spawn(): it holds only sockets the table marked
 * shared when it was made (or passed to it since, which the table marks too), so the search below
 * passes it by. */
void process_note_child(pid_t pid);

/* Is this a child made without fork handlers? Then the table is the parent's, every socket in it may
 * be the parent's too, and nothing may be shut down or drained here. One getpid(). */
bool process_is_unseen_child(void);

/* Is the socket with this inode open in a child of this process, or in a child's child? No child at
 * all (the common case) costs one waitid(); otherwise the children of each thread are listed in
 * /proc, and the descriptors of each one not made by fork() or posix_spawn() (and of its own
 * descendants) are looked at. Where that cannot be done (no /proc, a child that is not ours to
 * inspect), says yes. */
bool process_descendant_holds(uint32_t inode);

/* Calls each(dir, name, number) for every entry of the open directory whose name is a number (the
 * entries of /proc/PID/fd, /proc/PID/task), until it returns false. False if the directory could not
 * be read. No stdio, no malloc. */
bool process_each_numbered(int dir, bool (*each)(int dir, const char *name, long number, void *ctx), void *ctx);
