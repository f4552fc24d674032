/* The stub's sampling intervals (sampled mode), compiled into the stub
 * (freestanding, as sample_set.c): the bytes until the next sample,
 * exponential with mean st_sample_mean, drawn when a sample is taken, so
 * the stub never waits for tmbpf and no draw is reused (a table refilled
 * from outside ran dry within a second at 16 KiB on a busy line).
 *
 * Generator: splitmix64 over st_rng, advanced with a locked add so that
 * threads drawing at once (raw calls run without the GIL) get different
 * numbers. ln() without libm: u = m * 2^e with m in [1, 2), and
 * ln(m) = 2 atanh(s), s = (m - 1) / (m + 1) < 1/3, to s^11: relative
 * error below 2e-7, far under the sampling noise. */
#include <stdint.h>

#pragma GCC visibility push(hidden)

extern uint64_t st_rng, st_sample_mean;

static double ln(double u)
{
	union { double d; uint64_t b; } v = { .d = u };
	int e = (int)((v.b >> 52) & 0x7ff) - 1023;
	double m, s, s2;

	v.b = (v.b & 0x000fffffffffffffull) | 0x3ff0000000000000ull; /* m in [1, 2) */
	m = v.d;
	s = (m - 1.0) / (m + 1.0);
	s2 = s * s;
	return e * 0.69314718055994530942 +
	       2.0 * s * (1.0 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9 + s2 / 11)))));
}

/* The next interval in bytes, >= 1. */
uint64_t stub_next_interval(void)
{
	uint64_t x = __atomic_add_fetch(&st_rng, 0x9e3779b97f4a7c15ull, __ATOMIC_RELAXED);
	double u, v;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	u = (double)((x >> 11) + 1) * (1.0 / 9007199254740992.0); /* (0, 1] */
	v = -ln(u) * (double)(int64_t)st_sample_mean;
	return v < 1.0 ? 1 : v > 9.0e18 ? (uint64_t)9000000000000000000ull : (uint64_t)(int64_t)v;
}

#pragma GCC visibility pop
