/* Hooks on stdio output and dprintf(): glibc writes a stream's buffer through its internal __write,
 * which no hook sees, so the CLOSE_WAIT guard checks at the call the program makes instead (fprintf
 * to a FILE from fdopen(), bash's builtins writing to a /dev/tcp socket put on stdout). A stream on
 * anything but a tracked TCP socket costs one table lookup; fclose() is not here (hooks_fd.c).
 *
 * A call on a watched stream is refused when the guard would refuse a write of the stream's buffer
 * and the call's output: as when glibc's own write fails with EPIPE, it returns EOF (or 0 items),
 * errno is EPIPE, SIGPIPE is raised, and ferror() tells (bash checks it after every builtin). A call
 * that only fills the buffer is refused too: its bytes could only go into a dead connection. Such a
 * call is no write for the guard's clock: that moves when bytes leave the buffer for the kernel. */
#include "fdstate.h"
#include "hooks.h"
#include "real.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>

/* The next definitions, looked up on first use (stdio has no system call to stand in). */
static struct {
	int (*fflush)(FILE *);
	size_t (*fwrite)(const void *, size_t, size_t, FILE *);
	int (*fputs)(const char *, FILE *);
	int (*fputc)(int, FILE *);
	int (*putc)(int, FILE *);
	int (*puts)(const char *);
	int (*putchar)(int);
	int (*vfprintf)(FILE *, const char *, va_list);
	int (*vdprintf)(int, const char *, va_list);
#ifdef __GLIBC__
	int (*__vfprintf_chk)(FILE *, int, const char *, va_list);
	int (*__vdprintf_chk)(int, int, const char *, va_list);
	int (*fflush_unlocked)(FILE *);
	size_t (*fwrite_unlocked)(const void *, size_t, size_t, FILE *);
	int (*fputs_unlocked)(const char *, FILE *);
	int (*fputc_unlocked)(int, FILE *);
	int (*putc_unlocked)(int, FILE *);
	int (*putchar_unlocked)(int);
#endif
} next;

#define NEXT(name)                                                                                 \
	((__typeof__(next.name))(__atomic_load_n(&next.name, __ATOMIC_ACQUIRE)                         \
					 ?: real_lookup((void **)&next.name, #name)))

/* What a call puts out, counted only when the guard refuses it (for the log's bytes=). */
struct stream_output {
	FILE *stream;       /* its buffer goes out first; NULL for dprintf */
	size_t len;         /* fwrite, fputc, puts' newline */
	const char *text;   /* fputs, puts */
	const char *format; /* the printf family, with args */
	va_list *args;
};

static size_t output_bytes(const void *what)
{
	const struct stream_output *out = what;
	size_t total = (out->stream ? __fpending(out->stream) : 0) + out->len + (out->text ? strlen(out->text) : 0);
	if (out->format) {
		va_list args;
		va_copy(args, *out->args);
		int n = vsnprintf(NULL, 0, out->format, args);
		va_end(args);
		total += n > 0 ? (size_t)n : 0;
	}
	return total;
}

/* The stream's descriptor, or -1: glibc's FILE is public (its putc_unlocked macros read it), and
 * reading the field saves a call; fileno() would also set errno for a memory stream. */
static inline int stream_fd(FILE *stream)
{
	if (!stream)
		return -1; /* fflush(NULL): every stream, which we cannot list; not checked */
#ifdef __GLIBC__
	return stream->_fileno;
#else
	int saved = errno, fd = fileno_unlocked(stream);
	errno = saved;
	return fd;
#endif
}

/* Is the stream on a socket the guard watches? For any other stream, the whole cost of these hooks. */
static inline bool stream_watched(FILE *stream)
{
	return closewait_watches(stream_fd(stream));
}

/* After a refused call: the stream's error flag, as glibc sets it when its write fails. musl's FILE
 * is opaque: there ferror() stays clear, the call's result and errno still tell. */
static void mark_failed(FILE *stream)
{
#ifdef _IO_ERR_SEEN
	int saved = errno;
	flockfile(stream);
	stream->_flags |= _IO_ERR_SEEN;
	funlockfile(stream);
	errno = saved;
#else
	(void)stream;
#endif
}

/* Bytes left the stream's buffer for the kernel during the call if it holds fewer now than before
 * plus what the call added: then the guard's clock moves, as after write(). */
static void note_sent(int fd, FILE *stream, size_t pending_before, size_t added)
{
	struct write_note ignored;
	if (__fpending(stream) < pending_before + added && !in_vfork_child())
		fdstate_note_write(fd, &ignored);
}

/* CALL on STREAM unless the guard refuses it (then FAIL). ADDED: the bytes the call put into the
 * stream, an expression of result_ (its return value), evaluated only for a watched stream. The
 * rest are the fields of its struct stream_output, for the log. */
#define STREAM_WRITE(file, fail, call, added, ...)                                                       \
	({                                                                                               \
		FILE *stream_ = (file);                                                                  \
		int fd_ = stream_fd(stream_);                                                            \
		__typeof__(call) result_ = (fail);                                                       \
		if (!closewait_watches(fd_)) {                                                           \
			result_ = (call);                                                                \
		} else if (closewait_refuses_buffered(                                                   \
				   fd_, &(struct write_size){.count = output_bytes,                      \
							     .what = &(struct stream_output){            \
								     .stream = stream_, __VA_ARGS__}})) { \
			mark_failed(stream_);                                                            \
		} else {                                                                                 \
			size_t pending_ = __fpending(stream_);                                           \
			LINGER_COUNTED_WRITE struct write_token writing_ = linger_write_starts(fd_);     \
			result_ = (call);                                                                \
			note_sent(fd_, stream_, pending_, (added));                                      \
		}                                                                                        \
		result_;                                                                                 \
	})

/* NAME(PARAMS) passes ARGS straight on for a stream the guard does not watch, and goes through
 * STREAM_WRITE out of line otherwise, so that the pass-through path saves no registers for it. */
#define STREAM_HOOK(type, name, params, args, file, fail, added, ...)                                    \
	static __attribute__((noinline)) type name##_guarded params                                     \
	{                                                                                                \
		return STREAM_WRITE(file, fail, NEXT(name) args, added, __VA_ARGS__);                    \
	}                                                                                                \
	INTERPOSED type(name) params                                                                     \
	{                                                                                                \
		return stream_watched(file) ? name##_guarded args : NEXT(name) args;                     \
	}

/* The calls that glibc also exports as NAME_unlocked (gnulib's unlocked-io, in coreutils, calls
 * those): one definition serves both names. */
#define OUTPUT_HOOKS(unlocked)                                                                           \
	STREAM_HOOK(int, fflush##unlocked, (FILE * stream), (stream), stream, EOF, 0)                    \
	STREAM_HOOK(size_t, fwrite##unlocked, (const void *buf, size_t size, size_t n, FILE *stream),    \
		    (buf, size, n, stream), stream, 0, result_ * size, .len = size * n)                  \
	STREAM_HOOK(int, fputs##unlocked, (const char *s, FILE *stream), (s, stream), stream, EOF,       \
		    result_ >= 0 ? strlen(s) : 0, .text = s)                                             \
	STREAM_HOOK(int, fputc##unlocked, (int c, FILE *stream), (c, stream), stream, EOF,               \
		    result_ != EOF, .len = 1)                                                            \
	STREAM_HOOK(int, putc##unlocked, (int c, FILE *stream), (c, stream), stream, EOF,                \
		    result_ != EOF, .len = 1)                                                            \
	STREAM_HOOK(int, putchar##unlocked, (int c), (c), stdout, EOF, result_ != EOF, .len = 1)

OUTPUT_HOOKS()
#ifdef __GLIBC__
OUTPUT_HOOKS(_unlocked)
#endif

STREAM_HOOK(int, puts, (const char *s), (s), stdout, EOF, result_ >= 0 ? strlen(s) + 1 : 0, .text = s, .len = 1)

/* --- the printf family: every variant through one of these two --- */

/* flag: the fortify level of a __*printf_chk call, or -1 for the plain function. */
static inline int next_vfprintf(FILE *stream, int flag, const char *format, va_list args)
{
#ifdef __GLIBC__
	if (flag >= 0)
		return NEXT(__vfprintf_chk)(stream, flag, format, args);
#endif
	(void)flag;
	return NEXT(vfprintf)(stream, format, args);
}

static inline int next_vdprintf(int fd, int flag, const char *format, va_list args)
{
#ifdef __GLIBC__
	if (flag >= 0)
		return NEXT(__vdprintf_chk)(fd, flag, format, args);
#endif
	(void)flag;
	return NEXT(vdprintf)(fd, format, args);
}

static __attribute__((noinline)) int print_guarded(FILE *stream, int flag, const char *format, va_list args)
{
	va_list counted; /* a copy the log may use up: the call gets args untouched */
	va_copy(counted, args);
	int rc = STREAM_WRITE(stream, -1, next_vfprintf(stream, flag, format, args), result_ > 0 ? (size_t)result_ : 0,
			      .format = format, .args = &counted);
	va_end(counted);
	return rc;
}

static inline int print_stream(FILE *stream, int flag, const char *format, va_list args)
{
	return stream_watched(stream) ? print_guarded(stream, flag, format, args) : next_vfprintf(stream, flag, format, args);
}

/* dprintf() writes straight to the descriptor, through a stream of its own that no hook sees. */
static int print_fd(int fd, int flag, const char *format, va_list args)
{
	va_list counted;
	va_copy(counted, args);
	int rc = GUARDED_WRITE(fd, 0, next_vdprintf(fd, flag, format, args), .count = output_bytes,
			       .what = &(struct stream_output){.format = format, .args = &counted});
	va_end(counted);
	return rc;
}

INTERPOSED int vfprintf(FILE *stream, const char *format, va_list args)
{
	return print_stream(stream, -1, format, args);
}

INTERPOSED int vprintf(const char *format, va_list args)
{
	return print_stream(stdout, -1, format, args);
}

INTERPOSED int fprintf(FILE *stream, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	int rc = print_stream(stream, -1, format, args);
	va_end(args);
	return rc;
}

INTERPOSED int printf(const char *format, ...)
{
	va_list args;
	va_start(args, format);
	int rc = print_stream(stdout, -1, format, args);
	va_end(args);
	return rc;
}

INTERPOSED int vdprintf(int fd, const char *format, va_list args)
{
	return print_fd(fd, -1, format, args);
}

INTERPOSED int dprintf(int fd, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	int rc = print_fd(fd, -1, format, args);
	va_end(args);
	return rc;
}

#ifdef __GLIBC__
/* _FORTIFY_SOURCE builds (bash, all of Debian) call these; coreutils' gnulib the unlocked ones. */
INTERPOSED int __vfprintf_chk(FILE *stream, int flag, const char *format, va_list args)
{
	return print_stream(stream, flag, format, args);
}

INTERPOSED int __vprintf_chk(int flag, const char *format, va_list args)
{
	return print_stream(stdout, flag, format, args);
}

INTERPOSED int __fprintf_chk(FILE *stream, int flag, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	int rc = print_stream(stream, flag, format, args);
	va_end(args);
	return rc;
}

INTERPOSED int __printf_chk(int flag, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	int rc = print_stream(stdout, flag, format, args);
	va_end(args);
	return rc;
}

INTERPOSED int __vdprintf_chk(int fd, int flag, const char *format, va_list args)
{
	return print_fd(fd, flag, format, args);
}

INTERPOSED int __dprintf_chk(int fd, int flag, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	int rc = print_fd(fd, flag, format, args);
	va_end(args);
	return rc;
}
#endif
