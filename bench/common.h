/* What the bench programs share: error exits, clocks, strict number arguments. */
#pragma once
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Who speaks in error messages; the program's name unless set (connloop's client sets its own). */
static const char *bench_role;

static inline const char *speaker(void)
{
	return bench_role ? bench_role : program_invocation_short_name;
}

static inline void die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", speaker(), what, strerror(errno));
	exit(2);
}

static inline uint64_t ns_of(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline long parse_number(const char *s, long min, long max, const char *what)
{
	char *end;
	errno = 0;
	long n = strtol(s, &end, 10);
	if (errno || *end || end == s || n < min || n > max) {
		fprintf(stderr, "%s: %s must be %ld..%ld, not '%s'\n", speaker(), what, min, max, s);
		exit(2);
	}
	return n;
}
