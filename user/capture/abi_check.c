/* The BPF ABI (bpf/tmbpf.h) has the same layout on both sides: fixed sizes,
 * no implicit padding. A mismatch fails the build, not a trace. */
#include <stddef.h>

#include "tmbpf.h"

_Static_assert(sizeof(struct tm_proc_config) == 136, "tm_proc_config layout");
_Static_assert(offsetof(struct tm_proc_config, tstate_current_addr) == 8, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, ts_thread_id) == 40, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, max_frames) == 56, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, mem_slot) == 64, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, co_firstlineno) == 70, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, usedpools) == 88, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, ts_interp) == 104, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, tls_gilstate_offset) == 120, "tm_proc_config");
_Static_assert(offsetof(struct tm_proc_config, finalize_signal) == 128, "tm_proc_config");
_Static_assert(sizeof(struct tm_frame_raw) == 24, "tm_frame_raw layout");
_Static_assert(offsetof(struct tm_stack, frames) == 8, "tm_stack layout");
_Static_assert(sizeof(struct tm_stack) == TM_STACK_BYTES(TM_BPF_MAX_FRAMES), "tm_stack size");
_Static_assert(sizeof(struct tm_block_key) == 16, "tm_block_key layout");
_Static_assert(sizeof(struct tm_block) == 32, "tm_block layout");
_Static_assert(sizeof(struct tm_traced_memory) == 32, "tm_traced_memory layout");
_Static_assert(sizeof(struct tm_event) == 24, "tm_event layout");
_Static_assert(sizeof(struct tm_bpf_config) == 8, "tm_bpf_config layout");
_Static_assert(TM_CNT_MAX <= 16, "counters fit the snapshot's drop table");

/* An object file needs one symbol. */
int tm_abi_checked(void);
int tm_abi_checked(void)
{
	return 1;
}
