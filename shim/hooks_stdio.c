/* stdio calls that close a descriptor: fclose() and freopen() close the stream's descriptor through
 * libc's own internal close, which no close() hook sees. A socket given up so gets what close()
 * gives it: its entry is forgotten before the number is free, and its close lingers where a plain
 * one would lose data (linger.h). */
#include "fdstate.h"
#include "linger.h"
#include "real.h"
#include "vfork.h"

#include <errno.h>
#include <stdio.h>

/* The stream's descriptor, or -1 (a memory stream has none). Without the stream's lock, which the
 * call itself takes: a stream closed while another thread uses it is the program's error anyway. */
static int descriptor_of(FILE *stream)
{
	int saved = errno;
	int fd = stream ? fileno_unlocked(stream) : -1;
	errno = saved;
	return fd;
}

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
	c->fd = descriptor_of(c->stream);
	if (in_vfork_child() || !fdstate_is_tracked(c->fd))
		return call_real(c);
	return linger_watches(c->fd) ? linger_drop(c->fd, forget_and_call, c) : forget_and_call(c);
}

INTERPOSED int fclose(FILE *stream)
{
	if (!real_lookup((void **)&real.fclose, "fclose")) {
		errno = ENOSYS;
		return EOF;
	}
	return give_up_stream(&(struct stdio_call){.stream = stream});
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
