/* The one table of tmbpf's counters: BPF increments them (enum tm_counter,
 * per process and CPU), capture names them in snapshot metadata, the CLI
 * prints them with their remedy. One line per counter:
 *
 *   X(ENUM, "name", loss, "what it counts", "remedy")
 *
 * loss = 1: lost or degraded data. Every header, snapshot ("drops") and
 * exit summary sums exactly these; a loss counter always has a remedy.
 * Append only: the enum values index BPF maps and the names are stored in
 * snapshot files. */
#ifndef TMBPF_COUNTERS_H
#define TMBPF_COUNTERS_H

#define TM_COUNTERS(X)                                                                          \
	X(ALLOCS, "allocs", 0, "allocations recorded", "")                                      \
	X(FREES, "frees", 0, "frees that removed a live block", "")                             \
	X(FREE_UNKNOWN, "free_unknown", 0, "frees of blocks never seen (allocated before attach)", \
	  "")                                                                                   \
	X(NESTED, "nested", 0, "nested allocator calls skipped (raw under pymalloc, inside realloc)", \
	  "")                                                                                   \
	X(DROP_BLOCKS_FULL, "live_blocks_full", 1, "allocations lost: the live-block map was full", \
	  "raise --max-blocks")                                                                 \
	X(DROP_STACKS_FULL, "stacks_full", 1, "blocks kept without a traceback: the stack map was full", \
	  "raise --max-stacks")                                                                 \
	X(DROP_FRAME_READ, "frame_read", 1, "tracebacks cut short: a frame could not be read",   \
	  "frames were paged out or changing; tracebacks are shortened")                        \
	X(DROP_NO_RETURN, "missed_return", 1, "allocations lost: an entry's return was never seen", \
	  "calls in flight at attach or detach")                                                \
	X(DROP_PENDING_FULL, "pending_full", 1, "allocations lost: no per-thread record left",   \
	  "too many threads allocating at once")                                                \
	X(NO_TSTATE, "no_thread_state", 0,                                                      \
	  "allocations without a Python thread state (<unknown>:0, as tracemalloc)", "")         \
	X(FROZEN, "after_finalize", 0, "events ignored after Py_FinalizeEx (blocks frozen)", "")  \
	X(REPLACED, "missed_free", 1, "allocations at an address still live: its free went unseen", \
	  "a free went unseen (an unprobed path): that block's bytes were over-counted until reuse") \
	X(EVENTS_LOST, "late_symbolization", 1, "new stacks announced too late (ring buffer full)", \
	  "new stacks were symbolized late: some frames may show <unknown>")                    \
	X(NEWREF, "free_list_reuse", 0, "objects reused from a free list: traceback updated, as tracemalloc", \
	  "")                                                                                   \
	X(PREDICTED, "predicted", 0, "pymalloc allocations recorded at entry (no return probe)", "") \
	X(PREDICT_WRONG, "predict_wrong", 1, "pymalloc predictions the return contradicted",     \
	  "a pymalloc prediction was wrong (a tmbpf bug); TMBPF_NO_PREDICT=1 turns prediction off") \
	X(SAMPLES_LOST, "samples_lost", 1,                                                      \
	  "sampled blocks not kept: the stub's set of sampled blocks was full (counted in the target)", \
	  "raise --sample-set")                                                                 \
	X(ALLOCATOR_RESET, "allocator_reset", 1,                                                \
	  "times the target put its allocator pointers back past the stub (seen and taken again)", \
	  "the target called PyMem_SetAllocator with a copy saved before tmbpf came: events until " \
	  "tmbpf took the pointers again (within 0.2 s) went unseen")

#endif
