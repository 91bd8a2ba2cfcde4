/* The high-water mark of a table whose slots threads claim one by one (epollset.c, linger.c,
 * ownfd.c): searches stop at it, so a table that was never used much costs little to look through. */
#pragma once

/* Raises *mark to at least value. */
static inline void high_water_raise(unsigned int *mark, unsigned int value)
{
	unsigned int now = __atomic_load_n(mark, __ATOMIC_ACQUIRE);
	while (now < value &&
	       !__atomic_compare_exchange_n(mark, &now, value, true, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}
