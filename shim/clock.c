#include "clock.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdbool.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

/* --- system calls no preload can interpose --- */

/* Returns what the kernel returned: a result, or -errno. libfaketime can be built to interpose
 * syscall() too (Debian's is not, but others are), so where we know how, we enter the kernel
 * ourselves. */
#if defined(__x86_64__) && defined(__LP64__)
static long raw_syscall(long n, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__aarch64__)
static long raw_syscall(long n, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory", "cc");
	return x0;
}
#else
/* Elsewhere libc's syscall(): the last resort, interposable, but nothing lower is portable. */
static long raw_syscall(long n, long a, long b, long c, long d, long e, long f)
{
	int saved = errno;
	long ret = syscall(n, a, b, c, d, e, f);
	if (ret == -1)
		ret = -errno;
	errno = saved;
	return ret;
}
#endif

static int set_errno(long ret)
{
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return (int)ret;
}

/* A 32-bit system whose time_t is 64 bits takes its timespec through the *_time64 calls. */
#if defined(SYS_clock_gettime64) && !defined(__LP64__)
#define TIME64(call) (sizeof(time_t) == 8 ? SYS_##call##64 : SYS_##call)
#elif defined(SYS_clock_gettime)
#define TIME64(call) SYS_##call
#else
#define TIME64(call) SYS_##call##64
#endif

long clock_kernel_syscall(long n, long a, long b, long c, long d, long e, long f)
{
	long ret = raw_syscall(n, a, b, c, d, e, f);
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

static int syscall_clock_gettime(clockid_t id, struct timespec *ts)
{
	return set_errno(raw_syscall(TIME64(clock_gettime), id, (long)ts, 0, 0, 0, 0));
}

clock_reader clock_kernel_gettime = syscall_clock_gettime;

int clock_epoll_wait(int epfd, struct epoll_event *events, int max_events, int timeout_ms)
{
	/* epoll_pwait with no signal mask is epoll_wait, and every architecture has it. */
	return set_errno(raw_syscall(SYS_epoll_pwait, epfd, (long)events, max_events, timeout_ms, 0, 8));
}

void clock_sleep_ms(unsigned int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	int saved = errno;
	raw_syscall(TIME64(clock_nanosleep), CLOCK_MONOTONIC, 0, (long)&ts, 0, 0, 0);
	errno = saved;
}

/* --- the vDSO's clock_gettime --- */

/* Its name in the vDSO (vdso(7)), on the 64-bit systems whose vDSO takes our struct timespec. */
#if defined(__LP64__) && (defined(__x86_64__) || (defined(__riscv) && __riscv_xlen == 64))
#define VDSO_CLOCK_GETTIME "__vdso_clock_gettime"
#elif defined(__LP64__) && defined(__aarch64__)
#define VDSO_CLOCK_GETTIME "__kernel_clock_gettime"
#endif

#ifdef VDSO_CLOCK_GETTIME
#define ELF_CLASS_HERE ELFCLASS64

/* The address of a function the vDSO defines, from its dynamic symbol table, found through its
 * section headers; NULL if anything is not as expected. The vDSO is one ELF image mapped whole,
 * so a file offset in it is an offset from its start. */
static void *vdso_function(const char *name)
{
	uintptr_t base = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
	if (!base)
		return NULL;
	const ElfW(Ehdr) *header = (const ElfW(Ehdr) *)base;
	if (memcmp(header->e_ident, ELFMAG, SELFMAG) != 0 || header->e_ident[EI_CLASS] != ELF_CLASS_HERE ||
	    header->e_phentsize != sizeof(ElfW(Phdr)) || header->e_shentsize != sizeof(ElfW(Shdr)) ||
	    !header->e_phoff || !header->e_shoff)
		return NULL;

	/* The load bias: where the image is, less where it was linked to be. */
	const ElfW(Phdr) *segments = (const ElfW(Phdr) *)(base + header->e_phoff);
	uintptr_t bias = 0;
	bool loaded = false;
	for (unsigned int i = 0; i < header->e_phnum && !loaded; i++)
		if (segments[i].p_type == PT_LOAD) {
			bias = base + segments[i].p_offset - segments[i].p_vaddr;
			loaded = true;
		}
	if (!loaded)
		return NULL;

	const ElfW(Shdr) *sections = (const ElfW(Shdr) *)(base + header->e_shoff);
	size_t name_size = strlen(name) + 1;
	for (unsigned int i = 0; i < header->e_shnum; i++) {
		const ElfW(Shdr) *table = &sections[i];
		if (table->sh_type != SHT_DYNSYM || table->sh_entsize != sizeof(ElfW(Sym)) ||
		    table->sh_link >= header->e_shnum)
			continue;
		const ElfW(Sym) *symbols = (const ElfW(Sym) *)(base + table->sh_offset);
		const ElfW(Shdr) *strings = &sections[table->sh_link];
		const char *text = (const char *)(base + strings->sh_offset);
		for (size_t j = 0; j < table->sh_size / sizeof(ElfW(Sym)); j++) {
			const ElfW(Sym) *s = &symbols[j];
			unsigned int type = s->st_info & 0xf, binding = s->st_info >> 4;
			if (type != STT_FUNC || (binding != STB_GLOBAL && binding != STB_WEAK) ||
			    s->st_shndx == SHN_UNDEF || s->st_name >= strings->sh_size ||
			    strings->sh_size - s->st_name < name_size)
				continue;
			if (memcmp(text + s->st_name, name, name_size) == 0)
				return (void *)(bias + s->st_value);
		}
	}
	return NULL;
}
#endif

void clock_resolve(void)
{
#ifdef VDSO_CLOCK_GETTIME
	clock_reader vdso = (clock_reader)vdso_function(VDSO_CLOCK_GETTIME);
	struct timespec ts;
	/* One reading first: a vDSO that cannot read the clocks we use is not used. */
	if (vdso && vdso(CLOCK_MONOTONIC_COARSE, &ts) == 0 && vdso(CLOCK_REALTIME, &ts) == 0)
		__atomic_store_n(&clock_kernel_gettime, vdso, __ATOMIC_RELEASE);
#endif
}
