/* Where the library's code lies. Each hook runs on caches the kernel's work has just cooled, so the
 * code lines a short connection touches are much of what the library costs it (docs/PERFORMANCE.md,
 * row 7). What every connection runs (accept, the data-path hooks, close and its decision) is HOT:
 * GCC groups it on a few pages. What a connection seldom needs (logging, the guard's refusal, the
 * linger itself, starting the drain thread) is COLD: its calls' paths leave the hot functions' lines. */
#pragma once

#define HOT __attribute__((hot))
#define COLD __attribute__((cold))
