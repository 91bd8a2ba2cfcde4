/* A program that confines itself with seccomp allows the system calls it makes itself, and often
 * has any other one kill the process (SECCOMP_RET_KILL): one of the library's own (the accept
 * queue's getsockopt, a close's TCP_INFO, the drain thread's clone) would then kill its host. So the
 * library stands down as the filter goes in, while its own calls are still allowed: it says so in
 * one line, the drain thread ends what lingers and parks for good (linger.c), and from then on
 * every intervention is off, nothing is logged, and the hooks only pass through.
 *
 * It sees a filter (or strict mode) installed with prctl(PR_SET_SECCOMP) or with
 * syscall(SYS_seccomp), which is how libseccomp's seccomp_load() does it; not one installed with an
 * inline system call, nor one the process inherited (written for a whole service: libtcprare(7)).
 *
 * syscall() is interposed by an assembly trampoline, as vfork() is (vfork.c), and for the same reason:
 * syscall(SYS_vfork), or SYS_clone with CLONE_VFORK, returns in the child into the caller's frame,
 * and a C wrapper's own frame below it would be overwritten before the parent resumes. Such a vfork
 * is noted as vfork() notes it, so that the child's hooks pass through; a socket read through
 * syscall() is noted as read where no hook counts (fdstate_note_reads_unseen), and one whose
 * SO_LINGER is set through it as one whose options the close must ask about. */
#include "clock.h"
#include "config.h"
#include "fdstate.h"
#include "linger.h"
#include "log.h"
#include "real.h"
#include "vfork.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

/* The kernel's ABI (linux/seccomp.h, which musl's headers lack): prctl's modes, and seccomp()'s
 * operations. */
enum { PRCTL_MODE_STRICT = 1, PRCTL_MODE_FILTER = 2, SET_MODE_STRICT = 0, SET_MODE_FILTER = 1 };

/* Stands down before the filter goes in, unless the call is only a probe for seccomp's support
 * (libseccomp's seccomp_init() asks with SET_MODE_STRICT and a flag, systemd's checks with a NULL
 * filter): those install nothing, and fail. */
static void stand_down(void)
{
	if (in_vfork_child() || __atomic_load_n(&config.confined, __ATOMIC_ACQUIRE))
		return; /* a vfork child's filter is its own, and its memory the parent's */
	int saved = errno;
	if (log_enabled())
		log_problem((const char *[]){"tcprare: ", program_invocation_short_name, " installs a seccomp "
				     "filter: every repair is off from here on, so that no system call of the "
				     "library's can be refused", NULL});
	__atomic_store_n(&config.closewait, MODE_OFF, __ATOMIC_RELAXED);
	__atomic_store_n(&config.linger, MODE_OFF, __ATOMIC_RELAXED);
	__atomic_store_n(&config.backlog, BACKLOG_OFF, __ATOMIC_RELAXED);
	__atomic_store_n(&config.confined, true, __ATOMIC_RELEASE);
	linger_stand_down();
	log_silence(); /* the summary at exit too: a line costs system calls of its own */
	errno = saved;
}

INTERPOSED int prctl(int option, ...)
{
	va_list ap;
	va_start(ap, option);
	unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long),
		      a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
	va_end(ap);
	if (option == PR_SET_SECCOMP && (a2 == PRCTL_MODE_STRICT || (a2 == PRCTL_MODE_FILTER && a3)))
		stand_down();
	int (*next)(int, ...) = NEXT(prctl);
	if (!next) {
		errno = ENOSYS;
		return -1;
	}
	return next(option, a2, a3, a4, a5);
}

#if defined(SYS_seccomp) && (defined(__x86_64__) || defined(__aarch64__))
typedef long (*syscall_fn)(long, ...);

/* The descriptor a system call reads from, if it is one of those a socket may be read with (an int:
 * the register's upper half is whatever the caller left there). */
static int read_from(long number, unsigned long arg1, unsigned long arg2)
{
	switch (number) {
	case SYS_read:
	case SYS_readv:
	case SYS_recvfrom:
	case SYS_recvmsg:
	case SYS_recvmmsg:
	case SYS_splice:
		return (int)arg1;
	case SYS_sendfile:
		return (int)arg2;
	default:
		return -1;
	}
}

/* Called by the trampoline with syscall()'s first four arguments, on the program's thread and stack.
 * Returns the function the trampoline jumps to, with every argument as the program passed it. */
__attribute__((visibility("hidden"))) syscall_fn tcprare_syscall_prepare(long number, unsigned long op,
									 unsigned long flags, const void *args);

syscall_fn tcprare_syscall_prepare(long number, unsigned long op, unsigned long flags, const void *args)
{
	if (number == SYS_seccomp && (((unsigned int)op == SET_MODE_STRICT && !flags && !args) ||
				      ((unsigned int)op == SET_MODE_FILTER && args)))
		stand_down();
	/* A vfork through syscall(): clone's flags, then its stack (none: the caller's, shared). */
	if (number == SYS_clone && (op & (CLONE_VM | CLONE_VFORK)) == (CLONE_VM | CLONE_VFORK) && !flags)
		vfork_note_start();
#ifdef SYS_vfork
	if (number == SYS_vfork)
		vfork_note_start();
#endif
#ifdef SYS_setsockopt
	/* SO_LINGER set through syscall(): its value is past the arguments seen here (linger.c). */
	if (number == SYS_setsockopt && (int)flags == SOL_SOCKET && (long)args == SO_LINGER && !in_vfork_child())
		fdstate_note_options_unseen((int)op);
#endif
	int read_fd = read_from(number, op, flags);
	if (read_fd >= 0 && !in_vfork_child())
		fdstate_note_reads_unseen(read_fd);
	syscall_fn next = __atomic_load_n(&real.syscall, __ATOMIC_ACQUIRE);
	if (!next) { /* a call from another library's constructor, before ours */
		int saved = errno;
		next = (syscall_fn)real_lookup((void **)&real.syscall, "syscall");
		errno = saved;
	}
	return next ? next : (syscall_fn)clock_kernel_syscall;
}

#if defined(__x86_64__)
/* The six argument registers are kept across the call; a seventh argument is on the stack, which is
 * as the program left it when the jump is made. */
__asm__(".text\n"
	".globl syscall\n"
	".type syscall, @function\n"
	".p2align 4\n"
	"syscall:\n"
	".cfi_startproc\n"
#ifdef __CET__
	"endbr64\n"
#endif
	"pushq %rdi\n"
	".cfi_adjust_cfa_offset 8\n"
	"pushq %rsi\n"
	".cfi_adjust_cfa_offset 8\n"
	"pushq %rdx\n"
	".cfi_adjust_cfa_offset 8\n"
	"pushq %rcx\n"
	".cfi_adjust_cfa_offset 8\n"
	"pushq %r8\n"
	".cfi_adjust_cfa_offset 8\n"
	"pushq %r9\n"
	".cfi_adjust_cfa_offset 8\n"
	/* 8 off a 16-byte boundary on entry, six pushes later still: a call needs it on one */
	"subq $8, %rsp\n"
	".cfi_adjust_cfa_offset 8\n"
	"call tcprare_syscall_prepare\n"
	"addq $8, %rsp\n"
	".cfi_adjust_cfa_offset -8\n"
	"popq %r9\n"
	".cfi_adjust_cfa_offset -8\n"
	"popq %r8\n"
	".cfi_adjust_cfa_offset -8\n"
	"popq %rcx\n"
	".cfi_adjust_cfa_offset -8\n"
	"popq %rdx\n"
	".cfi_adjust_cfa_offset -8\n"
	"popq %rsi\n"
	".cfi_adjust_cfa_offset -8\n"
	"popq %rdi\n"
	".cfi_adjust_cfa_offset -8\n"
	"jmp *%rax\n"
	".cfi_endproc\n"
	".size syscall, .-syscall\n");
#elif defined(__aarch64__)
/* x0-x7 are kept across the call (syscall() takes at most seven), and the link register. */
__asm__(".text\n"
	".globl syscall\n"
	".type syscall, %function\n"
	".p2align 2\n"
	"syscall:\n"
	".cfi_startproc\n"
#ifdef __ARM_FEATURE_BTI_DEFAULT
	"hint #34\n" /* bti c */
#endif
	"stp x29, x30, [sp, #-80]!\n"
	".cfi_def_cfa_offset 80\n"
	".cfi_offset 29, -80\n"
	".cfi_offset 30, -72\n"
	"mov x29, sp\n"
	"stp x0, x1, [sp, #16]\n"
	"stp x2, x3, [sp, #32]\n"
	"stp x4, x5, [sp, #48]\n"
	"stp x6, x7, [sp, #64]\n"
	"bl tcprare_syscall_prepare\n"
	"mov x16, x0\n" /* x16: a branch through it may land on libc's "bti c" */
	"ldp x0, x1, [sp, #16]\n"
	"ldp x2, x3, [sp, #32]\n"
	"ldp x4, x5, [sp, #48]\n"
	"ldp x6, x7, [sp, #64]\n"
	"ldp x29, x30, [sp], #80\n"
	".cfi_restore 29\n"
	".cfi_restore 30\n"
	".cfi_def_cfa_offset 0\n"
	"br x16\n"
	".cfi_endproc\n"
	".size syscall, .-syscall\n");
#endif
#endif
