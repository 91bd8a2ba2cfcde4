/* clock_pause: how much time did libc's clock show passing over a real pause? Under a preload that
 * fakes time (libfaketime with a frozen clock) it may be none: the clock the library once read too.
 *
 *   clock_pause [PAUSE_MS]
 * Sleeps PAUSE_MS (default 400) and prints, from clock_gettime() before and after, as the library's
 * write path read it (CLOCK_MONOTONIC_COARSE) and as its log did (CLOCK_REALTIME):
 *   monotonic_coarse_ms=N
 *   realtime_year=YYYY    (the year the realtime clock says it is, after the pause) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long ms_of(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	long pause = argc > 1 ? atol(argv[1]) : 400;
	long long before = ms_of(CLOCK_MONOTONIC_COARSE);
	nanosleep(&(struct timespec){pause / 1000, pause % 1000 * 1000000L}, NULL);
	long long after = ms_of(CLOCK_MONOTONIC_COARSE);
	time_t now = (time_t)(ms_of(CLOCK_REALTIME) / 1000);
	struct tm tm;
	gmtime_r(&now, &tm);
	printf("monotonic_coarse_ms=%lld\nrealtime_year=%d\n", after - before, tm.tm_year + 1900);
	return 0;
}
