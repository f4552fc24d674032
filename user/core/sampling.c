/* The sampled-capture estimator (sampling.h). */
#include "core/sampling.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

double tm_sample_weight(uint64_t size, uint64_t interval)
{
	double p;

	if (!interval || !size)
		return 1.0;
	p = -expm1(-(double)size / (double)interval); /* 1 - exp(-s/R), exact for small s/R */
	return p > 0 ? 1.0 / p : 1.0;
}

int tm_sample_round(double v, uint64_t *out)
{
	if (!(v >= 0) || v >= 1.8e19)
		return -EOVERFLOW;
	*out = (uint64_t)(v + 0.5);
	return 0;
}

int tm_sample_estimate(const struct tm_snapshot *snap, uint64_t *sizes, uint64_t *counts)
{
	size_t ntb = tm_snapshot_ntracebacks(snap);
	double *es = calloc(ntb ? ntb : 1, sizeof(*es)), *ec = calloc(ntb ? ntb : 1, sizeof(*ec));
	int err = 0;

	if (!es || !ec) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < snap->ntraces; i++) {
		const struct tm_trace *t = &snap->traces[i];
		double w = tm_sample_weight(t->size_bytes, snap->meta.sample_interval_bytes);

		es[t->traceback->index] += w * (double)t->size_bytes;
		ec[t->traceback->index] += w;
	}
	for (size_t i = 0; i < ntb && !err; i++) {
		err = tm_sample_round(es[i], &sizes[i]);
		if (!err)
			err = tm_sample_round(ec[i], &counts[i]);
		if (!err && ec[i] > 0 && !counts[i])
			counts[i] = 1;
	}
cleanup:
	free(es);
	free(ec);
	return err;
}

uint64_t tm_sample_draw(uint64_t *rng, uint64_t mean)
{
	uint64_t x = *rng ? *rng : 0x9e3779b97f4a7c15ull;
	double u, v;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*rng = x;
	u = ((double)((x * 0x2545f4914f6cdd1dull) >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
	v = -log(u) * (double)mean;
	return v < 1 ? 1 : v > 9.0e18 ? (uint64_t)9.0e18 : (uint64_t)v;
}
