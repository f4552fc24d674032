/* uprobe_multi links (kernel 6.6+): one BPF link attaches a program at many
 * offsets of one file, each with its own cookie. Debian's libbpf 1.1 has no
 * API for them, so the link is created with bpf(BPF_LINK_CREATE) directly.
 *
 * Why: closing a perf-event uprobe link waits ~0.1 s in the kernel (measured
 * on 6.18: 30 links take 2.6 s even closed from 30 threads, 3.4-8.6 s one
 * after another), and a session now has ~40 probes; one multi link with 30
 * offsets closes in ~30 ms. A hit also costs ~50 ns less (427-467 ns
 * against 487-530 ns per call in the same run).
 *
 * A program attached this way must be loaded with expected_attach_type
 * BPF_TRACE_UPROBE_MULTI, and then cannot be attached as a perf-event
 * uprobe: the choice is made once, before the skeleton is loaded. */
#ifndef TM_CAPTURE_UPROBE_MULTI_H
#define TM_CAPTURE_UPROBE_MULTI_H

#include <stdint.h>
#include <sys/types.h>

/* The kernel's value of BPF_TRACE_UPROBE_MULTI (from its BTF: newer than the
 * uapi headers here), or 0 when the kernel has none. Looked up once. */
unsigned tm_uprobe_multi_attach_type(void);

/* BPF_TRACE_UPROBE_SESSION (kernel 6.13+), or 0: one program runs at entry
 * and at return (bpf_session_is_return()); an entry that returns 1 skips the
 * return, trap included (measured: such a call costs what an entry-only
 * probe costs, the return ~270 ns more). */
unsigned tm_uprobe_session_attach_type(void);

#define TM_UPROBE_SESSION 2

/* Attach prog_fd at cnt file offsets of path, for process pid only, each
 * with its cookie; ret: 0 at the offsets, 1 at the function's return (the
 * offsets must then be function entries), TM_UPROBE_SESSION both (the
 * program must have been loaded as a session program). Returns the link fd
 * or a negative errno. */
int tm_uprobe_multi_link(int prog_fd, const char *path, const uint64_t *offsets,
			 const uint64_t *cookies, uint32_t cnt, int ret, pid_t pid);

#endif
