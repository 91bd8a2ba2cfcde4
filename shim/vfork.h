/* vfork(): the child borrows this process's memory (and the calling thread's stack and thread-local
 * storage) until it execs or exits. Everything the library keeps (the descriptor table, the epoll
 * instances, the drain thread's slots, the log) is then the parent's, while the descriptor numbers the
 * child uses are its own: a hook running in the child must pass straight through to libc. */
#pragma once
#include "layout.h"
#include <stdbool.h>

#if defined(__x86_64__) || defined(__aarch64__)
#define TCPRARE_VFORK_TRAMPOLINE 1 /* vfork.c interposes vfork() with an assembly trampoline */
#endif

/* Set, and never cleared, by the first vfork() of the process: until then no check below costs
 * more than this load. */
extern bool vfork_seen __attribute__((visibility("hidden")));

/* Out of line: the calling thread's own record, and a getpid() while it says a vfork is under way. */
COLD bool vfork_is_child(void) __attribute__((visibility("hidden")));

/* Is this a vfork() child that has not exec'd yet? Then touch nothing of the library's: call libc.
 * The first hook the parent calls after its child exec'd or exited ends the vfork. */
static inline bool in_vfork_child(void)
{
	return __builtin_expect(__atomic_load_n(&vfork_seen, __ATOMIC_RELAXED), 0) && vfork_is_child();
}

/* This thread is about to vfork (vfork(), or syscall(SYS_vfork) and its kin: seccomp.c): from here
 * until the child execs or exits, its hooks pass through. */
void vfork_note_start(void) __attribute__((visibility("hidden")));

/* In a child of fork(): no vfork of this thread is under way there (see init.c). */
void vfork_after_fork_child(void);
