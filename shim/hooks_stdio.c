/* Hooks on stdio, where glibc does what no descriptor hook sees: it writes a stream's buffer, and
 * closes its descriptor, through its own internal functions.
 *
 * Output, and dprintf(): the CLOSE_WAIT guard checks at the call the program makes (fprintf to a FILE
 * from fdopen(), bash's builtins writing to a /dev/tcp socket put on stdout). A stream on anything
 * but a tracked TCP socket costs one table lookup. A call on a watched stream is refused when the
 * guard would refuse a write of the stream's buffer and the call's output: as when glibc's own write
 * fails with EPIPE, it returns EOF (or 0 items), errno is EPIPE, SIGPIPE is raised, and ferror()
 * tells (bash checks it after every builtin). A call that only fills the buffer is refused too: its
 * bytes could only go into a dead connection. Such a call is no write for the guard's clock: that
 * moves when bytes leave the buffer for the kernel.
 *
 * Closing: fclose() and freopen() close the stream's descriptor through libc's own internal close,
 * which no close() hook sees. A socket given up so gets what close() gives it: its entry is forgotten
 * before the number is free, and its close lingers where a plain one would lose data (linger.h).
 * fclose()'s flush of what is still buffered asks the guard first, as fflush() does. */

/* When optimizing, glibc's <stdio.h> also defines putchar(), vprintf() and fputc_unlocked()'s kin as
 * extern inlines, with the same effect under clang as fortify's wrappers (libc_names.h): ask glibc
 * for none. Before any header, as there. */
#define __NO_INLINE__ 1
#include "libc_names.h"

#include "fdstate.h"
#include "hooks.h"
#include "real.h"
#include "vfork.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>

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

/* Is the stream on a tracked socket? Its writes are the guard's business, and the lingering
 * close's too (a close waits for them), with the guard off as well. For any other stream, the
 * whole cost of these hooks. */
static inline bool stream_watched(FILE *stream)
{
	return fdstate_is_tracked(stream_fd(stream));
}

/* Does the guard refuse a call on fd's socket (its entry e) that may only fill a stream's buffer? It
 * records no write: see note_sent(). */
static bool refused_buffered(struct fd_entry *e, int fd, const struct write_size *size)
{
	struct write_note note;
	return closewait_due_buffered(e, &note) && closewait_refuses(fd, note, 0, size);
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
static void note_sent(struct fd_entry *e, FILE *stream, size_t pending_before, size_t added)
{
	struct write_note ignored;
	size_t pending = __fpending(stream);
	if (pending < pending_before + added) {
		fdstate_note_write(e, &ignored);
		fdstate_note_wrote(e, pending_before + added - pending);
	}
}

/* CALL on STREAM unless the guard refuses it (then FAIL). ADDED: the bytes the call put into the
 * stream, an expression of result_ (its return value), evaluated only for a watched stream. The
 * rest are the fields of its struct stream_output, for the log. */
#define STREAM_WRITE(file, fail, call, added, ...)                                                       \
	({                                                                                               \
		FILE *stream_ = (file);                                                                  \
		int fd_ = stream_fd(stream_);                                                            \
		struct fd_entry *entry_ = in_vfork_child() ? NULL : fdstate_entry(fd_);                  \
		__typeof__(call) result_ = (fail);                                                       \
		if (!entry_) {                                                                           \
			result_ = (call);                                                                \
		} else if (refused_buffered(entry_, fd_,                                                 \
					    &(struct write_size){.count = output_bytes,                  \
								 .what = &(struct stream_output){        \
									 .stream = stream_, __VA_ARGS__}})) { \
			mark_failed(stream_);                                                            \
		} else {                                                                                 \
			size_t pending_ = __fpending(stream_);                                           \
			LINGER_COUNTED_WRITE struct write_token writing_ = linger_write_starts(entry_);   \
			result_ = (call);                                                                \
			note_sent(entry_, stream_, pending_, (added));                                   \
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

/* --- closing --- */

struct stdio_call {
	FILE *stream;
	int fd;
	const char *path, *mode;          /* freopen's */
	FILE *(*reopen)(const char *, const char *, FILE *);
	FILE *reopened;
};

static int call_real(struct stdio_call *c)
{
	if (!c->reopen)
		return real.fclose(c->stream);
	c->reopened = c->reopen(c->path, c->mode, c->stream);
	return c->reopened ? 0 : -1;
}

/* The call closes fd whatever its outcome (a failed flush, a failed open): the entry goes first, as
 * in close(), before another thread can get the number. */
static int forget_and_call(void *call)
{
	fdstate_forget(((struct stdio_call *)call)->fd);
	return call_real(call);
}

static int give_up_stream(struct stdio_call *c)
{
	c->fd = stream_fd(c->stream);
	if (in_vfork_child() || !fdstate_is_tracked(c->fd))
		return call_real(c);
	return linger_watches(c->fd) ? linger_drop(c->fd, forget_and_call, c) : forget_and_call(c);
}

/* Before fclose(): if the guard refuses what is still buffered, it is thrown away, as glibc throws
 * away a buffer whose write failed, and the close goes on. */
static bool flush_refused(FILE *stream)
{
	int fd = stream_fd(stream);
	struct fd_entry *e = stream_watched(stream) && !in_vfork_child() ? fdstate_entry(fd) : NULL;
	if (!e)
		return false;
	if (!refused_buffered(e, fd, &(struct write_size){.count = output_bytes,
							  .what = &(struct stream_output){.stream = stream}})) {
		size_t pending = __fpending(stream);
		if (pending > 0) /* fclose() writes it where no hook sees: the program's last word */
			fdstate_note_wrote(e, pending);
		return false;
	}
	int saved = errno;
	__fpurge(stream);
	errno = saved;
	return true;
}

/* A stream that reads a socket reads it through glibc's internal read, which no hook counts. */
INTERPOSED FILE *fdopen(int fd, const char *mode)
{
	if (!real_lookup((void **)&real.fdopen, "fdopen")) {
		errno = ENOSYS;
		return NULL;
	}
	FILE *stream = real.fdopen(fd, mode);
	if (stream && (strchr(mode, 'r') || strchr(mode, '+')) && !in_vfork_child())
		fdstate_note_reads_unseen(fd);
	return stream;
}

INTERPOSED int fclose(FILE *stream)
{
	if (!real_lookup((void **)&real.fclose, "fclose")) {
		errno = ENOSYS;
		return EOF;
	}
	bool refused = flush_refused(stream);
	int rc = give_up_stream(&(struct stdio_call){.stream = stream});
	if (refused) /* as glibc's fclose() after its flush failed: the stream is closed all the same */
		errno = EPIPE;
	return refused ? EOF : rc;
}

static FILE *reopen_with(FILE *(*reopen)(const char *, const char *, FILE *), const char *path, const char *mode,
			 FILE *stream)
{
	struct stdio_call c = {.stream = stream, .path = path, .mode = mode, .reopen = reopen};
	give_up_stream(&c);
	return c.reopened;
}

INTERPOSED FILE *freopen(const char *path, const char *mode, FILE *stream)
{
	if (!real_lookup((void **)&real.freopen, "freopen")) {
		errno = ENOSYS;
		return NULL;
	}
	return reopen_with(real.freopen, path, mode, stream);
}

#ifdef __GLIBC__
/* Programs built with 64-bit file offsets call freopen64. */
INTERPOSED FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
	if (!real_lookup((void **)&real.freopen64, "freopen64")) {
		errno = ENOSYS;
		return NULL;
	}
	return reopen_with(real.freopen64, path, mode, stream);
}
#endif
