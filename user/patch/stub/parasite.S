/* The parasite: position-independent code that inject.c copies into zero
 * padding after an r-x segment of the target (through /proc/PID/mem) and
 * runs on one interrupted thread of it, by setting only rip, rsp, rax and
 * orig_rax with one PTRACE_SETREGS and detaching at once. From then on it
 * needs nothing from tmbpf, so a tmbpf killed at any moment leaves the
 * target correct: it saves every register it touches and the flags below
 * the thread's red zone, makes the stub area
 *   [area, area + code_len)           r-x MAP_PRIVATE of a memfd "tmbpf-stub"
 *   [area + code_len, + state_len)    rw- private anonymous, MADV_WIPEONFORK
 * (one reservation of the whole range first, where the kernel likes or
 * MAP_FIXED_NOREPLACE at a hint, then the state MAP_FIXED over its own
 * tail: adjacent, for the
 * stub's rip-relative addressing), writes the injection id into the state
 * (stub.S: st_inject_id) once the area is complete, closes the memfd,
 * restores everything and jumps to p_rip with %rsp = p_rsp (a jmp, not a
 * ret: the thread's stack is as it was). A failed syscall leaves no
 * mapping and no descriptor. Only memfd_create, ftruncate, mmap, madvise,
 * munmap and close: no sleeping syscall (sys_nanosleep would reset the
 * interrupted thread's restart block). x86-64 syscall numbers. */
	.section .rodata.parasite, "a"
	.globl tm_parasite_start, tm_parasite_end
	.globl tm_parasite_rip, tm_parasite_rsp, tm_parasite_hint, tm_parasite_code_len
	.globl tm_parasite_state_len, tm_parasite_id, tm_parasite_id_off, tm_parasite_map_flags
tm_parasite_start:
	pushfq
	push %rax
	push %rdi
	push %rsi
	push %rdx
	push %r10
	push %r8
	push %r9
	push %rcx
	push %r11
	push %rbx
	push %r12
	push %r13
	push %r14

	lea p_name(%rip), %rdi
	mov $1, %esi			/* MFD_CLOEXEC */
	mov $319, %eax			/* memfd_create */
	syscall
	test %rax, %rax
	js .Lrestore
	mov %rax, %rbx			/* fd */

	mov %rbx, %rdi
	mov tm_parasite_code_len(%rip), %rsi
	mov $77, %eax			/* ftruncate */
	syscall
	test %rax, %rax
	jnz .Lclose

	mov tm_parasite_hint(%rip), %rdi
	mov tm_parasite_code_len(%rip), %rsi
	add tm_parasite_state_len(%rip), %rsi
	mov $5, %edx			/* PROT_READ | PROT_EXEC */
	mov tm_parasite_map_flags(%rip), %r10	/* MAP_PRIVATE (| MAP_FIXED_NOREPLACE at a hint) */
	mov %rbx, %r8
	xor %r9d, %r9d
	mov $9, %eax			/* mmap */
	syscall
	cmp $-4095, %rax
	jae .Lclose
	mov %rax, %r12			/* area */

	mov %r12, %rdi
	add tm_parasite_code_len(%rip), %rdi
	mov tm_parasite_state_len(%rip), %rsi
	mov $3, %edx			/* PROT_READ | PROT_WRITE */
	mov $0x32, %r10d		/* MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, over the reservation */
	mov $-1, %r8
	xor %r9d, %r9d
	mov $9, %eax
	syscall
	cmp $-4095, %rax
	jae .Lunmap
	mov %rax, %r13			/* state */

	mov %r13, %rdi
	mov tm_parasite_state_len(%rip), %rsi
	mov $18, %edx			/* MADV_WIPEONFORK */
	mov $28, %eax			/* madvise */
	syscall
	test %rax, %rax
	jnz .Lunmap

	mov tm_parasite_id_off(%rip), %rax
	mov tm_parasite_id(%rip), %rcx
	mov %rcx, (%r13, %rax)		/* last: the area is complete */
	jmp .Lclose

.Lunmap:
	mov %r12, %rdi
	mov tm_parasite_code_len(%rip), %rsi
	add tm_parasite_state_len(%rip), %rsi
	mov $11, %eax			/* munmap */
	syscall
.Lclose:
	mov %rbx, %rdi
	mov $3, %eax			/* close */
	syscall
.Lrestore:
	pop %r14
	pop %r13
	pop %r12
	pop %rbx
	pop %r11
	pop %rcx
	pop %r9
	pop %r8
	pop %r10
	pop %rdx
	pop %rsi
	pop %rdi
	pop %rax
	popfq				/* mov and jmp below leave the flags alone */
	mov tm_parasite_rsp(%rip), %rsp
	jmp *tm_parasite_rip(%rip)

	.p2align 3
tm_parasite_rip:	.quad 0	/* where the thread resumes: its rip, or rip - 2 to restart its syscall */
tm_parasite_rsp:	.quad 0	/* its rsp */
tm_parasite_hint:	.quad 0	/* the area's address, 0: the kernel's choice */
tm_parasite_map_flags:	.quad 2	/* MAP_PRIVATE, | MAP_FIXED_NOREPLACE with a hint */
tm_parasite_code_len:	.quad 4096
tm_parasite_state_len:	.quad 4096
tm_parasite_id:		.quad 0	/* non-zero, written into the state when the area is complete */
tm_parasite_id_off:	.quad 0	/* where in the state */
p_name:			.asciz "tmbpf-stub"
tm_parasite_end:
	.section .note.GNU-stack, "", @progbits
