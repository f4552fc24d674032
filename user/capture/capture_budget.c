/* BPF map sizes from a memory budget (tm_capture_budget, capture.h). */
#include "capture/capture_priv.h"

/* What one map entry costs the kernel, measured as memlock in fdinfo on
 * 6.18: a preallocated hash element of live_blocks (16 B key, 32 B value)
 * takes 112 B; a stacks element (no prealloc) its value plus ~56 B of
 * element header and key, rounded to 8. The fixed part: the 4 MiB event
 * ring and the per-process arrays, 8 MiB with room. */
#define BLOCK_ENTRY_BYTES 112ull
#define STACK_ENTRY_OVERHEAD 56ull
#define FIXED_MAP_BYTES (8ull << 20)

uint64_t tm_capture_budget(uint64_t bytes, uint32_t frames, int watch, uint32_t *max_blocks,
			   uint32_t *max_stacks)
{
	uint64_t stack_entry = (TM_STACK_BYTES(frames ? frames : 1) + STACK_ENTRY_OVERHEAD + 7) & ~7ull;
	uint64_t room, blocks, stacks;

	if (bytes < TM_CAPTURE_MIN_BUDGET + (watch ? WATCH_EVENTS_BYTES : 0))
		return 0;
	room = bytes - FIXED_MAP_BYTES - (watch ? WATCH_EVENTS_BYTES : 0);
	/* deep tracebacks make many more distinct stacks, each bigger */
	blocks = (frames > 1 ? room / 2 : room / 4 * 3) / BLOCK_ENTRY_BYTES;
	stacks = (frames > 1 ? room / 2 : room / 4) / stack_entry;
	if (blocks > 1u << 28)
		blocks = 1u << 28;
	if (stacks > 1u << 26)
		stacks = 1u << 26;
	*max_blocks = (uint32_t)blocks;
	*max_stacks = (uint32_t)stacks;
	return FIXED_MAP_BYTES + (watch ? WATCH_EVENTS_BYTES : 0) + blocks * BLOCK_ENTRY_BYTES +
	       stacks * stack_entry;
}
