/* What the stub (user/patch/stub/stub.S) tells BPF at its report points:
 * one uprobe per point, cookie kind TM_PROBE_STUB with the event below in
 * TM_COOKIE_STUB_EVENT(cookie), and the registers each event fills. Plain
 * #defines: the assembler includes this too (through stub_abi.h). */
#ifndef TMBPF_STUB_H
#define TMBPF_STUB_H

#define TM_STUB_MALLOC 1     /* rax block (0: failed), rbx size */
#define TM_STUB_CALLOC 2     /* rax block, rbx nelem, r12 elsize */
#define TM_STUB_REALLOC 3    /* rax new block (0: failed, the old stays), rbx old block (0: none), r12 size */
#define TM_STUB_FREE 4       /* r12 block (a raw free, reported at once) */
#define TM_STUB_FREE_BATCH 5 /* rbx entries, r12 their address: the quarantine (below) */
#define TM_STUB_NEWREF 6     /* r12 block of an object being created, maybe from a free list */
#define TM_STUB_SAMPLED_REALLOC 7 /* rbx old block if it was sampled (else 0), rax new block if
				   * sampled (else 0), r12 size */
/* Sampled mode reports sampled allocations as TM_STUB_MALLOC/CALLOC and
 * frees of sampled blocks as TM_STUB_FREE. */

/* mem/obj frees wait in a quarantine of TM_STUB_QUARANTINE entries of
 * TM_STUB_QENTRY_SIZE bytes, the block's address first; the last free
 * reports them together and the stub frees them after. */
#define TM_STUB_QUARANTINE 16
#define TM_STUB_QENTRY_SIZE 24

#endif
