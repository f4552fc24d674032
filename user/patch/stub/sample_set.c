/* The stub's set of sampled blocks (sampled mode), compiled into the stub
 * (freestanding: no libc, no data of its own: the state is stub.S's).
 *
 * Open addressing with linear probing over st_set[st_set_mask + 1]; 0 is
 * an empty slot. Frees look blocks up on every call, lock-free (stub.S:
 * sample_lookup); inserts and removes are rare (one per sample), under a
 * spinlock, and bracketed by st_set_seq (odd while changing), which a
 * lookup reads before and after so that an entry moved by a concurrent
 * removal is never missed. Removal shifts the entries after the hole back
 * (no tombstones: lookups stay short). The set never fills beyond
 * st_set_limit, so a lookup always meets an empty slot. In front of it,
 * st_filter counts the set's blocks per bucket of the hash: a free whose
 * bucket is empty (nearly all) never touches the set. */
#include <stdint.h>

#include "patch/stub/stub_abi.h"

/* Everything here, the state included, is reached rip-relatively. */
#pragma GCC visibility push(hidden)

extern volatile uint64_t st_set_seq;
extern volatile uint32_t st_set_lock;
extern uint64_t st_set_mask, st_set_limit, st_set_count, st_samples_lost;
extern uint64_t st_set[];
extern uint8_t st_filter[];
extern const uint64_t c_golden;

static inline uint64_t home(uint64_t p)
{
	return (((p >> 4) * c_golden) >> 32) & st_set_mask;
}

/* The filter's counter of p's bucket (stub.S: SAMPLED_FREE reads it). */
static inline uint8_t *filter(uint64_t p)
{
	return &st_filter[((p >> 4) * c_golden) >> (64 - STUB_FILTER_BITS)];
}

static inline void lock(void)
{
	while (__atomic_exchange_n(&st_set_lock, 1, __ATOMIC_ACQUIRE))
		while (st_set_lock)
			__builtin_ia32_pause();
}

static inline void unlock(void)
{
	__atomic_store_n(&st_set_lock, 0, __ATOMIC_RELEASE);
}

static inline void begin_change(void)
{
	st_set_seq++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static inline void end_change(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	st_set_seq++;
}

/* 1 when p was added, 0 when the set is full (the sample is lost, counted). */
int stub_sample_insert(uint64_t p)
{
	uint64_t i;
	int added = 0;

	lock();
	if (st_set_count < st_set_limit) {
		begin_change();
		for (i = home(p); st_set[i] && st_set[i] != p; i = (i + 1) & st_set_mask)
			;
		if (!st_set[i]) {
			uint8_t *f = filter(p);

			if (*f < 255)
				++*f; /* set before the block can be freed: it is not returned yet */
			st_set[i] = p;
			st_set_count++;
		}
		end_change();
		added = 1;
	} else {
		st_samples_lost++;
	}
	unlock();
	return added;
}

/* 1 when p was in the set (now removed), 0 otherwise. */
int stub_sample_remove(uint64_t p)
{
	uint64_t i, j, k;

	lock();
	for (i = home(p); st_set[i] && st_set[i] != p; i = (i + 1) & st_set_mask)
		;
	if (!st_set[i]) {
		unlock();
		return 0;
	}
	begin_change();
	for (j = i;;) {
		j = (j + 1) & st_set_mask;
		if (!st_set[j])
			break;
		k = home(st_set[j]);
		/* the entry at j stays when its home lies cyclically in (i, j] */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		st_set[i] = st_set[j];
		i = j;
	}
	st_set[i] = 0;
	st_set_count--;
	{
		uint8_t *f = filter(p);

		if (*f < 255) /* a saturated counter stays: it only costs lookups */
			--*f;
	}
	end_change();
	unlock();
	return 1;
}

#pragma GCC visibility pop
