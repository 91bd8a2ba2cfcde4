/* vfork() keeps its meaning: the child runs in the parent's memory until it execs or exits, so a
 * program may report an exec failure through a variable of its own, as the idiom goes.
 *
 * The hook cannot be C. The child returns from vfork() into the caller's frame on the stack it shares
 * with the parent, then calls on (execve, _exit) and overwrites whatever lies below that frame: a C
 * wrapper's own frame and return address, which the parent still needs when the kernel resumes it.
 * So an assembly trampoline calls tcprare_vfork_prepare() and then jumps to the real vfork with the
 * stack exactly as on entry, and the real vfork returns straight to the program, in both processes.
 *
 * While the child runs, hooks it calls must not touch the library's state (vfork.h). The parent's
 * thread is suspended meanwhile, so a thread-local record of "this thread vforked, from this pid" tells
 * the two apart: the child has the record but another pid. Thread-local storage is used with the
 * default model: the library may also be dlopen()ed, where initial-exec storage can fail to load, and
 * it is read only after a vfork happened in the process (vfork_seen). */
#include "config.h"
#include "fdstate.h"
#include "real.h"
#include "vfork.h"

#include <errno.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

bool vfork_seen;
/* The pid that called vfork() on this thread and has not been seen back since; 0: none. */
static __thread pid_t vfork_parent;

/* The kernel's answer, never a cached or another preload's one. */
static pid_t current_pid(void)
{
	return (pid_t)syscall(SYS_getpid);
}

bool vfork_is_child(void)
{
	pid_t parent = vfork_parent;
	if (!parent)
		return false;
	int saved = errno;
	pid_t now = current_pid();
	errno = saved;
	if (now != parent)
		return true;
	/* The parent, resumed: its child has exec'd or exited. Sockets another thread tracked while
	 * this one entered vfork() went to the child too: share them as well (see below). */
	vfork_parent = 0;
	fdstate_note_fork(false);
	return false;
}

void vfork_after_fork_child(void)
{
	vfork_parent = 0; /* a record left by a vfork of this thread is the parent's, not ours */
}

void vfork_note_start(void)
{
	/* Under the program's seccomp filter, no getpid() of ours (seccomp.c): every intervention is
	 * off anyway. */
	if (in_vfork_child() || config.confined)
		return;
	/* The child runs the program's code until it execs, and can keep any descriptor across the exec
	 * (a dup2() onto 0, 1 or 2 clears close-on-exec; so does Python's pass_fds): as for fork(),
	 * every socket open now may stay open in the child. One counter step, no per-socket work
	 * (posix_spawn's marking asks the kernel about each one). */
	int saved = errno;
	fdstate_note_fork(false);
	__atomic_store_n(&vfork_seen, true, __ATOMIC_RELAXED);
	vfork_parent = current_pid();
	errno = saved;
}

#ifdef TCPRARE_VFORK_TRAMPOLINE
typedef pid_t (*vfork_fn)(void);

/* Called by the trampoline, before the real vfork(), on the program's thread and stack. Returns the
 * function the trampoline jumps to. */
__attribute__((visibility("hidden"))) vfork_fn tcprare_vfork_prepare(void);

vfork_fn tcprare_vfork_prepare(void)
{
	/* vfork() in a vfork child (no exec yet): still the grandparent's memory. */
	if (in_vfork_child() || config.confined)
		return real.vfork ? real.vfork : fork;
	int saved = errno;
	vfork_fn next = (vfork_fn)real_lookup((void **)&real.vfork, "vfork");
	if (next)
		vfork_note_start();
	errno = saved;
	/* No vfork below us: fork() is a conforming one (POSIX), and runs the fork handlers. */
	return next ? next : fork;
}

/* vfork: call tcprare_vfork_prepare(), then jump to the function it returned, with the stack and
 * the return address as the program left them. */
#if defined(__x86_64__)
__asm__(".text\n"
	".globl vfork\n"
	".type vfork, @function\n"
	".p2align 4\n"
	"vfork:\n"
	".cfi_startproc\n"
#ifdef __CET__
	"endbr64\n"
#endif
	/* On entry the stack is 8 off a 16-byte boundary (the return address); a call needs it on one. */
	"subq $8, %rsp\n"
	".cfi_adjust_cfa_offset 8\n"
	"call tcprare_vfork_prepare\n"
	"addq $8, %rsp\n"
	".cfi_adjust_cfa_offset -8\n"
	"jmp *%rax\n"
	".cfi_endproc\n"
	".size vfork, .-vfork\n");
#elif defined(__aarch64__)
__asm__(".text\n"
	".globl vfork\n"
	".type vfork, %function\n"
	".p2align 2\n"
	"vfork:\n"
	".cfi_startproc\n"
#ifdef __ARM_FEATURE_BTI_DEFAULT
	"hint #34\n" /* bti c */
#endif
	/* The link register holds the program's return address: keep it across the call. */
	"stp x29, x30, [sp, #-16]!\n"
	".cfi_def_cfa_offset 16\n"
	".cfi_offset 29, -16\n"
	".cfi_offset 30, -8\n"
	"mov x29, sp\n"
	"bl tcprare_vfork_prepare\n"
	"mov x16, x0\n" /* x16: a branch through it may land on libc's "bti c" */
	"ldp x29, x30, [sp], #16\n"
	".cfi_restore 29\n"
	".cfi_restore 30\n"
	".cfi_def_cfa_offset 0\n"
	"br x16\n"
	".cfi_endproc\n"
	".size vfork, .-vfork\n");
#endif

#else /* no trampoline for this architecture */

/* A C wrapper cannot return into the stack a vfork child borrows; fork() is a conforming vfork()
 * (POSIX), and its fork handlers keep the table true. The program's child then has its own memory. */
INTERPOSED pid_t vfork(void)
{
	return fork();
}
#endif
