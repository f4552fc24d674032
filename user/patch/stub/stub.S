/* The stub: a CPython allocator hook in machine code, written into the
 * target by tmbpf (user/patch/stub.c) and reached through the allocator
 * pointers it redirects. Each entry calls the real function and reports
 * the event at a probed 5-byte nop, which kernel 6.18 turns into a call of
 * its uprobe trampoline: one cheap kernel entry per event, no return probe.
 * What it must never do: change what the call returns or does, touch
 * memory other than its own state, or block (but on its own spinlock, held
 * for a few frees).
 *
 * Layout and the probe ABI: stub_abi.h and bpf/tmbpf.h (TM_STUB_*).
 * Registers at a probe: rax the result, rbx and r12 the arguments, as
 * tmbpf.h lists per event; rbx, r12, r13 are saved by every entry that
 * probes (three pushes also keep the stack 16-byte aligned for the call).
 *
 * Nesting (tracemalloc's reentrancy flag): while a thread is inside a mem
 * or obj call, `owner` holds its thread pointer (%fs:0); a raw call made
 * from inside (pymalloc hands large blocks to the raw allocator) sees its
 * own thread there and passes through. Two threads inside mem/obj calls at
 * once (only with subinterpreters that own their GIL) can only make a
 * nested call look top-level: an event seen twice, which BPF tolerates.
 *
 * Entries, for each domain d (raw, mem, obj) and function f:
 *   full_d_f: every event reported (full mode). */
#include "patch/stub/stub_abi.h"

	.section .text.stub, "ax"

/* Report point: a 5-byte nop carrying a uprobe (global label = its offset). */
.macro PROBE name
	.globl probe_\name
probe_\name:
	.byte 0x0f, 0x1f, 0x44, 0x00, 0x00
.endm

/* ---- full mode: malloc, calloc, realloc ------------------------------------ */

/* Raw domain: no owner of its own; nested under this thread's mem/obj call:
 * pass. rdi ctx, rsi/rdx arguments. */
.macro FULL_RAW_ALLOC fn, idx
	.globl full_raw_\fn
full_raw_\fn:
	cmpb $STUB_GUARD_ON, st_guard(%rip)
	jne 9f
	mov %fs:0, %rax
	cmp st_owner(%rip), %rax
	je 9f
	push %rbx
	push %r12
	push %r13
	mov %rsi, %rbx
	mov %rdx, %r12
	call *(c_orig + 8 * (\idx))(%rip)
	PROBE full_raw_\fn
	pop %r13
	pop %r12
	pop %rbx
	ret
9:	jmp *(c_orig + 8 * (\idx))(%rip)
.endm

/* mem and obj: the thread owns the nesting word while inside; the block of
 * a malloc/calloc is remembered so that _Py_NewReference of that fresh
 * object needs no report. */
.macro FULL_OBJ_ALLOC dom, fn, idx, remember
	.globl full_\dom\()_\fn
full_\dom\()_\fn:
	cmpb $STUB_GUARD_ON, st_guard(%rip)
	jne 9f
	push %rbx
	push %r12
	push %r13
	mov %rsi, %rbx
	mov %rdx, %r12
	mov st_owner(%rip), %r13
	mov %fs:0, %rax
	mov %rax, st_owner(%rip)
	call *(c_orig + 8 * (\idx))(%rip)
	mov %r13, st_owner(%rip)
.if \remember
	mov %rax, st_last_alloc(%rip)
.endif
	PROBE full_\dom\()_\fn
	pop %r13
	pop %r12
	pop %rbx
	ret
9:	jmp *(c_orig + 8 * (\idx))(%rip)
.endm

FULL_RAW_ALLOC malloc, STUB_ORIG_RAW + 0
FULL_RAW_ALLOC calloc, STUB_ORIG_RAW + 1
FULL_RAW_ALLOC realloc, STUB_ORIG_RAW + 2
FULL_OBJ_ALLOC mem, malloc, STUB_ORIG_MEM + 0, 1
FULL_OBJ_ALLOC mem, calloc, STUB_ORIG_MEM + 1, 1
FULL_OBJ_ALLOC mem, realloc, STUB_ORIG_MEM + 2, 0
FULL_OBJ_ALLOC obj, malloc, STUB_ORIG_OBJ + 0, 1
FULL_OBJ_ALLOC obj, calloc, STUB_ORIG_OBJ + 1, 1
FULL_OBJ_ALLOC obj, realloc, STUB_ORIG_OBJ + 2, 0

/* ---- full mode: free --------------------------------------------------------- */

/* Raw free: reported at once (raw frees need not hold the GIL; nested
 * ones are the outer free's). */
	.globl full_raw_free
full_raw_free:
	cmpb $STUB_GUARD_ON, st_guard(%rip)
	jne 9f
	test %rsi, %rsi
	jz 9f
	mov %fs:0, %rax
	cmp st_owner(%rip), %rax
	je 9f
	push %rbx
	push %r12
	push %r13
	mov %rsi, %r12
	PROBE full_raw_free
	mov %r12, %rsi
	pop %r13
	pop %r12
	pop %rbx
9:	jmp *(c_orig + 8 * (STUB_ORIG_RAW + 3))(%rip)

/* mem/obj free: into the quarantine; the STUB_QUARANTINE-th reports all of
 * them at once and frees them. The block stays allocated until BPF forgot
 * it, so no allocation returns its address first. */
.macro FULL_OBJ_FREE dom, idx
	.globl full_\dom\()_free
full_\dom\()_free:
	cmpb $STUB_GUARD_ON, st_guard(%rip)
	jne 8f
	test %rsi, %rsi
	jz 7f
	push %rbx
	push %r12
	push %r13
	call q_lock
	mov st_q_n(%rip), %rax
	imul $STUB_QENTRY_SIZE, %rax, %rcx
	lea st_q(%rip), %rdx
	add %rdx, %rcx
	mov %rsi, (%rcx)
	mov %rdi, 8(%rcx)
	movq $\idx, 16(%rcx)
	inc %rax
	mov %rax, st_q_n(%rip)
	cmp $STUB_QUARANTINE, %rax
	jb 1f
	call q_flush_report
1:	movl $0, st_q_lock(%rip)
	pop %r13
	pop %r12
	pop %rbx
7:	ret
8:	cmpb $STUB_GUARD_DRAIN, st_guard(%rip)
	jne 9f
	call q_drain
9:	jmp *(c_orig + 8 * (\idx))(%rip)
.endm

FULL_OBJ_FREE mem, STUB_ORIG_MEM + 3
FULL_OBJ_FREE obj, STUB_ORIG_OBJ + 3

/* Take the quarantine's spinlock (uncontended under the GIL). Clobbers rax. */
q_lock:
	mov $1, %eax
	xchg %eax, st_q_lock(%rip)
	test %eax, %eax
	jnz 1f
	ret
1:	pause
	cmpl $0, st_q_lock(%rip)
	jne 1b
	jmp q_lock

/* Lock held: report the quarantine (rbx entries at r12), then free them.
 * Called with rbx, r12, r13 saved by the entry, which needs nothing else
 * afterwards but to release the lock. */
q_flush_report:
	mov st_q_n(%rip), %rbx
	lea st_q(%rip), %r12
	PROBE full_free_batch
	jmp q_free_all

/* Detaching (guard DRAIN): free what the quarantine holds, unreported.
 * Saves what the free entry's tail jump needs (rdi, rsi). */
q_drain:
	cmpq $0, st_q_n(%rip)
	je 2f
	push %rdi
	push %rsi
	push %rbx
	push %r12
	push %r13
	sub $8, %rsp			/* q_free_all is entered at 16n + 8, as after a call */
	call q_lock
	call q_free_all
	movl $0, st_q_lock(%rip)
	add $8, %rsp
	pop %r13
	pop %r12
	pop %rbx
	pop %rsi
	pop %rdi
2:	ret

/* Lock held: call the real free of every entry, as this thread owning the
 * nesting word (their nested raw frees pass through), then empty it.
 * Stack: entered 16-byte aligned + 8 (a call from an aligned frame). */
q_free_all:
	push %r13
	mov st_owner(%rip), %r13
	mov %fs:0, %rax
	mov %rax, st_owner(%rip)
	lea st_q(%rip), %r12
	mov st_q_n(%rip), %rbx
	test %rbx, %rbx
	jz 2f
1:	mov (%r12), %rsi
	mov 8(%r12), %rdi
	mov 16(%r12), %rax
	lea c_orig(%rip), %rcx
	call *(%rcx, %rax, 8)
	add $STUB_QENTRY_SIZE, %r12
	dec %rbx
	jnz 1b
2:	movq $0, st_q_n(%rip)
	mov %r13, st_owner(%rip)
	pop %r13
	ret

/* ---- objects created again: _Py_NewReference, the ref tracer ---------------- */

/* rdi op. Its block starts before it by the GC header and 3.12+'s
 * pre-header, per its type's flags. A block this thread's last mem/obj
 * allocation returned is fresh: no report. Clobbers rax, rcx, rdx. */
.macro NEWREF_BODY probe, skip
	mov 8(%rdi), %rax
	mov c_tp_flags_off(%rip), %rcx
	mov (%rax, %rcx), %rax
	mov %rdi, %rdx
	test %rax, c_gc_mask(%rip)
	jz 1f
	sub $16, %rdx
1:	test %rax, c_pre_mask(%rip)
	jz 2f
	sub $16, %rdx
2:	cmp st_last_alloc(%rip), %rdx
	je \skip
	push %rbx
	push %r12
	push %r13
	mov %rdx, %r12
	PROBE \probe
	pop %r13
	pop %r12
	pop %rbx
.endm

/* libpython's GOT entries of _Py_NewReference and _Py_NewReferenceNoTotal. */
	.globl full_newref
full_newref:
	cmpb $STUB_GUARD_ON, st_guard(%rip)
	jne 9f
	NEWREF_BODY full_newref, 9f
9:	jmp *(c_orig + 8 * STUB_ORIG_NEWREF)(%rip)

	.globl full_newref2
full_newref2:
	cmpb $STUB_GUARD_ON, st_guard(%rip)
	jne 9f
	NEWREF_BODY full_newref2, 9f
9:	jmp *(c_orig + 8 * STUB_ORIG_NEWREF2)(%rip)

/* 3.13+: _PyRuntime.ref_tracer.tracer_func(op, event, data). Creation is
 * event 0; the tracer installed before ours (its data untouched) is
 * chained, or 0 returned. */
	.globl full_reftracer
full_reftracer:
	test %esi, %esi
	jnz 9f
	cmpb $STUB_GUARD_ON, st_guard(%rip)
	jne 9f
	push %rsi
	push %rdx
	NEWREF_BODY full_reftracer, 8f
8:	pop %rdx
	pop %rsi
9:	mov (c_orig + 8 * STUB_ORIG_TRACER)(%rip), %rax
	test %rax, %rax
	jz 1f
	jmp *%rax
1:	xor %eax, %eax
	ret

/* ---- sampled mode ------------------------------------------------------------ */

/* A block is sampled when the bytes allocated since the last sample reach
 * the next interval (exponential, mean --sample-bytes, drawn by the stub
 * when it samples: sample_draw.c): byte-weighted Poisson sampling. Unsampled calls cost a
 * subtraction and a branch; frees and reallocs a probe of the filter in front
 * of the set of sampled blocks. Where mem/obj frees are pymalloc's, only the
 * raw free is taken over (FLOOR_ALLOC): on LTO builds each pointer taken over
 * costs its devirtualized fast path (~4 % of the objects loop per function).
 * mem/obj count under the GIL (plain arithmetic); raw calls, which may run
 * without it, with a locked subtraction of their own counter. Nested raw
 * calls pass through before counting (tracemalloc ignores them). */

/* Next interval into the counter at \counter (sample_draw.c; clobbers the
 * caller-saved registers: used after the real call, with rbx, r12, r13
 * saved and the stack aligned). */
.macro DRAW counter
	call stub_next_interval
	mov %rax, \counter(%rip)
.endm

/* Is the block at rsi possibly sampled? Its bucket of the filter is empty
 * for nearly every block: then jump to \miss. The filter (16 KiB) stays in
 * cache where the set (8 bytes a slot, 512 KiB by default) would miss on
 * most frees and reallocs. Clobbers rax, rcx. */
.macro FILTER_HIT miss
	mov %rsi, %rax
	shr $4, %rax
	imul c_golden(%rip), %rax
	shr $(64 - STUB_FILTER_BITS), %rax
	lea st_filter(%rip), %rcx
	cmpb $0, (%rcx, %rax)
	je \miss
.endm

/* Call the real function \idx as this thread owning the nesting word (its
 * nested raw calls pass through) and return its result. Entered as the
 * entry was: nothing pushed. */
.macro CALL_AS_OWNER idx
	push %r13
	mov st_owner(%rip), %r13
	mov %fs:0, %rax
	mov %rax, st_owner(%rip)
	call *(c_orig + 8 * (\idx))(%rip)
	mov %r13, st_owner(%rip)
	pop %r13
	ret
.endm

/* Where the stub does not see mem/obj frees (c_sample_floor != 0: both are
 * pymalloc's, which hands a block it did not allocate to the raw free), a
 * sampled mem/obj block smaller than the floor is asked for at the floor,
 * so pymalloc gets it from the raw allocator and its free reaches the raw
 * free entry; pymalloc counts it as it counts any large block. Costs one
 * more compare on a sampled call only. rsi/rdx: the arguments (calloc's
 * nelem and elsize, each below the floor if their product is: no
 * overflow). Clobbers rax, rcx. */
.macro FLOOR_ALLOC calloc
	mov c_sample_floor(%rip), %rax
.if \calloc
	cmp %rax, %rsi
	jae 3f
	cmp %rax, %rdx
	jae 3f
	mov %rsi, %rcx
	imul %rdx, %rcx
	cmp %rax, %rcx
	jae 3f
	mov $1, %esi
	mov %rax, %rdx
.else
	cmp %rax, %rsi
	jae 3f
	mov %rax, %rsi
.endif
3:
.endm

/* rsi/rdx: malloc size, or calloc nelem and elsize; \raw: the raw domain. */
.macro SAMPLED_ALLOC dom, fn, idx, raw, calloc
	.globl sampled_\dom\()_\fn
sampled_\dom\()_\fn:
.if \raw
	mov %fs:0, %rax
	cmp st_owner(%rip), %rax
	je 9f
.endif
	mov %rsi, %rax
.if \calloc
	imul %rdx, %rax
.endif
.if \raw
	lock sub %rax, st_remaining_raw(%rip)
	jg 9f
.else
	sub %rax, st_remaining_obj(%rip)
	jle 2f
	/* Not sampled. pymalloc serves 1..STUB_SMALL_REQUEST bytes itself;
	 * other sizes it hands to the raw allocator: own the nesting word
	 * around those, or the raw call would count (and sample) them again. */
	dec %rax
	cmp $(STUB_SMALL_REQUEST - 1), %rax
	jb 9f
	CALL_AS_OWNER \idx
2:
.endif
	cmpb $STUB_GUARD_ON, st_guard(%rip)
	jne 8f
	push %rbx
	push %r12
	push %r13
	mov %rsi, %rbx
	mov %rdx, %r12
.if !\raw
	FLOOR_ALLOC \calloc
	mov st_owner(%rip), %r13
	mov %fs:0, %rax
	mov %rax, st_owner(%rip)
.endif
	call *(c_orig + 8 * (\idx))(%rip)
.if !\raw
	mov %r13, st_owner(%rip)
.endif
	mov %rax, %r13			/* the block */
.if \raw
	DRAW st_remaining_raw
.else
	DRAW st_remaining_obj
.endif
	test %r13, %r13
	jz 7f
	mov %r13, %rdi
	call stub_sample_insert
	test %eax, %eax
	jz 7f				/* the set is full: lost, counted */
	mov %r13, %rax
	PROBE sampled_\dom\()_\fn
7:	mov %r13, %rax
	pop %r13
	pop %r12
	pop %rbx
	ret
8:	movabs $0x7fffffffffffffff, %rax	/* not active: stop counting */
	mov %rax, st_remaining_obj(%rip)
	mov %rax, st_remaining_raw(%rip)
9:	jmp *(c_orig + 8 * (\idx))(%rip)
.endm

SAMPLED_ALLOC raw, malloc, STUB_ORIG_RAW + 0, 1, 0
SAMPLED_ALLOC raw, calloc, STUB_ORIG_RAW + 1, 1, 1
SAMPLED_ALLOC mem, malloc, STUB_ORIG_MEM + 0, 0, 0
SAMPLED_ALLOC mem, calloc, STUB_ORIG_MEM + 1, 0, 1
SAMPLED_ALLOC obj, malloc, STUB_ORIG_OBJ + 0, 0, 0
SAMPLED_ALLOC obj, calloc, STUB_ORIG_OBJ + 1, 0, 1

/* realloc(ptr, size): the old block leaves the set if it was in it; the new
 * one is sampled by its size, decided before the call (so that a sampled
 * one can be asked for at the floor, FLOOR_ALLOC). One report when either
 * matters: rbx the old sampled block (or 0), rax the new one if sampled (or
 * 0), r12 the size. A failed call keeps the old block sampled and the
 * counter spent: the next allocation takes the sample. */
.macro SAMPLED_REALLOC dom, idx, raw
	.globl sampled_\dom\()_realloc
sampled_\dom\()_realloc:
.if \raw
	mov %fs:0, %rax
	cmp st_owner(%rip), %rax
	je 9f
.endif
	cmpb $STUB_GUARD_ON, st_guard(%rip)
	jne 9f
.if !\raw
	/* Fast path (nearly every call): the old block not sampled, the new
	 * one not to be: count its size and call as the nesting word's owner. */
	test %rsi, %rsi
	jz 1f
	FILTER_HIT 1f
	jmp 3f
1:	sub %rdx, st_remaining_obj(%rip)
	jle 2f
	CALL_AS_OWNER \idx
2:	add %rdx, st_remaining_obj(%rip)	/* under the GIL: no one counted meanwhile */
3:
.endif
	push %rbx
	push %r12
	push %r13
	push %r14
	sub $8, %rsp			/* 16-byte aligned for the calls */
	push %rdi
	push %rsi
	mov %rdx, %r12			/* the size */
	xor %ebx, %ebx			/* the old block, if it was sampled */
	test %rsi, %rsi
	jz 1f
	FILTER_HIT 1f			/* nearly every old block: not sampled */
	mov %rsi, %rdi
	call stub_sample_remove
	test %eax, %eax
	jz 1f
	mov (%rsp), %rbx
1:	pop %rsi
	pop %rdi
	mov %r12, %rdx
	xor %r14d, %r14d		/* 1: sample the new block */
.if \raw
	lock sub %r12, st_remaining_raw(%rip)
.else
	sub %r12, st_remaining_obj(%rip)
.endif
	jg 2f
	mov $1, %r14d
.if !\raw
	mov c_sample_floor(%rip), %rax
	cmp %rax, %rdx
	jae 2f
	mov %rax, %rdx
.endif
2:
.if !\raw
	mov st_owner(%rip), %r13
	mov %fs:0, %rax
	mov %rax, st_owner(%rip)
.endif
	call *(c_orig + 8 * (\idx))(%rip)
.if !\raw
	mov %r13, st_owner(%rip)
.endif
	mov %rax, %r13			/* the result */
	test %rax, %rax
	jnz 4f
	test %rbx, %rbx			/* failed: the old block stays, sampled */
	jz 6f
	mov %rbx, %rdi
	call stub_sample_insert
	jmp 6f
4:	xor %eax, %eax
	test %r14d, %r14d
	jz 5f
.if \raw
	DRAW st_remaining_raw
.else
	DRAW st_remaining_obj
.endif
	mov %r13, %rdi
	call stub_sample_insert
	test %eax, %eax
	mov $0, %eax
	cmovnz %r13, %rax
5:	mov %rax, %rcx
	or %rbx, %rcx
	jz 6f
	PROBE sampled_\dom\()_realloc
6:	mov %r13, %rax
	add $8, %rsp
	pop %r14
	pop %r13
	pop %r12
	pop %rbx
	ret
9:	jmp *(c_orig + 8 * (\idx))(%rip)
.endm

SAMPLED_REALLOC raw, STUB_ORIG_RAW + 2, 1
SAMPLED_REALLOC mem, STUB_ORIG_MEM + 2, 0
SAMPLED_REALLOC obj, STUB_ORIG_OBJ + 2, 0

/* free(ptr): a sampled block leaves the set and is reported first (before
 * the real free, so that no allocation returns its address before BPF has
 * forgotten it); any other passes after one lookup. */
.macro SAMPLED_FREE dom, idx, raw
	.globl sampled_\dom\()_free
sampled_\dom\()_free:
	test %rsi, %rsi
	jz 9f
.if \raw
	mov %fs:0, %rax
	cmp st_owner(%rip), %rax
	je 9f
.endif
	FILTER_HIT 9f
	call sample_lookup
	test %eax, %eax
	jz 9f
	cmpb $STUB_GUARD_ON, st_guard(%rip)
	jne 9f
	push %rbx
	push %r12
	push %r13
	mov %rsi, %r12
	mov %rdi, %r13
	mov %rsi, %rdi
	call stub_sample_remove
	test %eax, %eax
	jz 1f
	PROBE sampled_\dom\()_free
1:	mov %r12, %rsi
	mov %r13, %rdi
	pop %r13
	pop %r12
	pop %rbx
9:	jmp *(c_orig + 8 * (\idx))(%rip)
.endm

SAMPLED_FREE raw, STUB_ORIG_RAW + 3, 1
SAMPLED_FREE mem, STUB_ORIG_MEM + 3, 0
SAMPLED_FREE obj, STUB_ORIG_OBJ + 3, 0

/* Is rsi in the set? eax 1 or 0; clobbers rax, rcx, rdx, r8, r9 only (the
 * caller's rdi/rsi go to the real free). Lock-free: st_set_seq odd means a
 * change in progress, a different value after the probe a change meanwhile:
 * look again. A forked child's set is empty (its state is wiped). */
sample_lookup:
1:	mov st_set_seq(%rip), %r8
	test $1, %r8
	jnz 5f
	mov %rsi, %rax
	shr $4, %rax
	imul c_golden(%rip), %rax
	shr $32, %rax
	mov st_set_mask(%rip), %r9
	and %r9, %rax
	lea st_set(%rip), %rcx
2:	mov (%rcx, %rax, 8), %rdx
	cmp %rsi, %rdx
	je 3f
	test %rdx, %rdx
	jz 4f
	inc %rax
	and %r9, %rax
	jmp 2b
3:	cmp st_set_seq(%rip), %r8
	jne 1b
	mov $1, %eax
	ret
4:	cmp st_set_seq(%rip), %r8
	jne 1b
	xor %eax, %eax
	ret
5:	pause
	jmp 1b

	.globl stub_code_end
stub_code_end:

/* ---- constants: written with the code, never changed ------------------------ */
	.section .rodata.stubconst, "a"
	.p2align 6
	.globl c_magic, c_version, c_orig, c_tp_flags_off, c_gc_mask, c_pre_mask, c_golden
	.globl c_sample_floor
c_magic:	.quad 0		/* STUB_MAGIC once written */
c_version:	.quad STUB_VERSION
c_orig:		.fill STUB_NORIG, 8, 0	/* the real functions (STUB_ORIG_*) */
c_tp_flags_off:	.quad 0xa8	/* offsetof(PyTypeObject, tp_flags) */
c_gc_mask:	.quad 0		/* tp_flags bit: a GC header (16 bytes) precedes the object */
c_pre_mask:	.quad 0		/* tp_flags bits: 3.11+'s pre-header (16 bytes) precedes that */
c_golden:	.quad 0x9e3779b97f4a7c15	/* the set's hash multiplier */
c_sample_floor:	.quad 0		/* sampled mode: FLOOR_ALLOC's size (STUB_SAMPLE_FLOOR), 0: none */
	.globl stub_const_end
stub_const_end:

/* ---- state: the MADV_WIPEONFORK page (zero in a forked child) --------------- */
	.section .bss.stubstate, "aw", @nobits
	.p2align 6
	.globl st_guard, st_owner, st_last_alloc, st_q_lock, st_q_n, st_q
	.globl st_session_pid, st_session_start, st_inject_id
st_guard:	.byte 0		/* STUB_GUARD_*: written last by tmbpf */
	.p2align 3
st_session_pid:	.quad 0		/* the tmbpf session that uses the stub: its pid and */
st_session_start: .quad 0	/*   start time (/proc/PID/stat field 22), 0: none */
st_inject_id:	.quad 0		/* written by the injection once the area is complete */
	.p2align 6
st_owner:	.quad 0		/* thread pointer of the mem/obj call in progress */
st_last_alloc:	.quad 0		/* the last block a mem/obj malloc/calloc returned */
	.p2align 6
st_q_lock:	.long 0
	.p2align 3
st_q_n:		.quad 0
st_q:		.fill STUB_QUARANTINE * STUB_QENTRY_SIZE, 1, 0
	.globl stub_state_end
stub_state_end:

/* Sampled mode only (the state is then bigger, stub_abi.h). */
	.p2align 6
	.globl st_remaining_obj, st_remaining_raw, st_rng, st_sample_mean, st_set_seq, st_set_lock
	.globl st_set_mask, st_set_limit, st_set_count, st_samples_lost, st_filter, st_set
st_remaining_obj: .quad 0	/* bytes until the next mem/obj sample (signed) */
	.p2align 6
st_remaining_raw: .quad 0	/* the same for raw calls (locked arithmetic) */
	.p2align 6
st_rng:		.quad 0		/* the intervals' generator (sample_draw.c), seeded by tmbpf */
st_sample_mean:	.quad 0		/* --sample-bytes */
st_set_seq:	.quad 0		/* odd while the set changes */
st_set_lock:	.long 0
	.p2align 3
st_set_mask:	.quad 0		/* slots - 1 (a power of two) */
st_set_limit:	.quad 0		/* entries at most (3/4 of the slots) */
st_set_count:	.quad 0
st_samples_lost: .quad 0	/* samples not taken: the set was full */
	.p2align 12
st_filter:	.fill 1 << STUB_FILTER_BITS, 1, 0	/* per hash bucket: sampled blocks in it (255: many, for good) */
st_set:		/* st_set_mask + 1 slots of 8 bytes: the rest of the state */
	.globl stub_sampled_state_end
stub_sampled_state_end:

	.section .note.GNU-stack, "", @progbits
