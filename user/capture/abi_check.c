/* The BPF ABI (bpf/tmbpf.h) has the same layout on both sides: fixed sizes,
 * no implicit padding. A mismatch fails the build, not a trace. */
#include <stddef.h>

#include "core/snapshot.h"
#include "tmbpf.h"

_Static_assert(sizeof(struct tm_proc_config) == 152, "tm_proc_config layout");
_Static_assert(offsetof(struct tm_code_image, data) == 56, "tm_code_image layout");
_Static_assert(offsetof(struct tm_proc_config, sample_bytes) == 120, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, tls_gilstate_offset) == 136, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, finalize_signal) == 144, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, tstate_current_addr) == 8, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, ts_thread_id) == 40, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, max_frames) == 56, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, mem_slot) == 64, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, co_firstlineno) == 70, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, usedpools) == 88, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, ts_interp) == 104, "tm_proc_config");
_Static_assert(sizeof(struct tm_frame_raw) == 24, "tm_frame_raw layout");
_Static_assert(offsetof(struct tm_stack, frames) == 8, "tm_stack layout");
_Static_assert(sizeof(struct tm_stack) == TM_STACK_BYTES(TM_BPF_MAX_FRAMES), "tm_stack size");
_Static_assert(sizeof(struct tm_block_key) == 16, "tm_block_key layout");
_Static_assert(sizeof(struct tm_block) == 32, "tm_block layout");
_Static_assert(sizeof(struct tm_traced_memory) == 32, "tm_traced_memory layout");
_Static_assert(sizeof(struct tm_event) == 24, "tm_event layout");
_Static_assert(sizeof(struct tm_bpf_config) == 24, "tm_bpf_config layout");
#define TM_COUNTER_LOSS(e, n, loss, w, r) + (loss)
_Static_assert((0 TM_COUNTERS(TM_COUNTER_LOSS)) <= TM_MAX_DROP_COUNTERS,
	       "every loss counter fits the snapshot's drop table");
#undef TM_COUNTER_LOSS

/* An object file needs one symbol. */
int tm_abi_checked(void);
int tm_abi_checked(void)
{
	return 1;
}
