/* One ELF file opened read-only with libelf: symbol lookup (.symtab first,
 * then .dynsym, TLS symbols included), PT_LOAD / PT_TLS segments, and
 * conversion between virtual addresses (ELF vaddr, before load bias) and
 * file offsets. Nothing here touches a process. */
#ifndef TM_PLACEMENT_ELF_FILE_H
#define TM_PLACEMENT_ELF_FILE_H

#include <stddef.h>
#include <stdint.h>

struct tm_elf;

struct tm_elf_sym {
	uint64_t value;  /* st_value: vaddr, or offset in the TLS block for STT_TLS */
	uint64_t size;
	int type;        /* STT_* */
	int bind;        /* STB_* */
	int dynamic;     /* found in .dynsym (exported) rather than .symtab */
};

struct tm_elf_segment {
	uint64_t vaddr, memsz;
	uint64_t offset, filesz;
	uint32_t flags;  /* PF_R | PF_W | PF_X */
	uint64_t align;
};

/* Open path. Returns NULL and sets errno (ENOEXEC: not an x86-64 ELF). */
struct tm_elf *tm_elf_open(const char *path);
void tm_elf_close(struct tm_elf *e);

/* 1 when the file has a .symtab (not stripped). */
int tm_elf_has_symtab(const struct tm_elf *e);
/* 1 for ET_DYN (PIE executable or shared library), 0 for ET_EXEC. */
int tm_elf_is_dyn(const struct tm_elf *e);

/* Look a defined symbol up by exact name; .symtab first, then .dynsym.
 * Returns 0 or -ENOENT. */
int tm_elf_symbol(const struct tm_elf *e, const char *name, struct tm_elf_sym *sym);
/* Same, restricted to .dynsym (exported symbols). */
int tm_elf_dynsym(const struct tm_elf *e, const char *name, struct tm_elf_sym *sym);
/* 1 when a DT_NEEDED entry starts with prefix ("libpython3."). */
int tm_elf_needs(const struct tm_elf *e, const char *prefix);

/* Program headers. */
size_t tm_elf_nsegments(const struct tm_elf *e);
const struct tm_elf_segment *tm_elf_segment(const struct tm_elf *e, size_t i); /* PT_LOAD only */
/* PT_TLS, or -ENOENT. */
int tm_elf_tls_segment(const struct tm_elf *e, struct tm_elf_segment *tls);

/* vaddr -> file offset through the PT_LOAD that maps it from the file
 * (exec_only: only PF_X segments). Returns 0 or -ENOENT. */
int tm_elf_vaddr_to_offset(const struct tm_elf *e, uint64_t vaddr, int exec_only, uint64_t *offset);
/* 1 when vaddr lies in an executable PT_LOAD. */
int tm_elf_vaddr_is_exec(const struct tm_elf *e, uint64_t vaddr);

/* Read len bytes of the file image at vaddr (must be file-backed, not .bss).
 * Returns 0, -ENOENT (not in the file) or -EIO. */
int tm_elf_read(const struct tm_elf *e, uint64_t vaddr, void *buf, size_t len);

/* vaddr of the first R_X86_64_DTPMOD64 relocation (a GOT slot that ld.so
 * fills with this object's TLS module id). Returns 0 or -ENOENT. */
int tm_elf_dtpmod_slot(const struct tm_elf *e, uint64_t *vaddr);

/* The GOT entry (vaddr) that a GLOB_DAT or JUMP_SLOT relocation fills with
 * the address of symbol name: where a shared library's code loads it from
 * (a call through the PLT jumps through it). 0 or -ENOENT. */
int tm_elf_got_slot(const struct tm_elf *e, const char *name, uint64_t *vaddr);

/* Calls fn(arg, name, vaddr, size) for each defined STT_FUNC symbol of
 * .symtab with a size (the local, static functions too). Stops at the first
 * non-zero return and returns it. -ENOENT when the file has no .symtab. */
int tm_elf_each_func(const struct tm_elf *e,
		     int (*fn)(void *arg, const char *name, uint64_t vaddr, uint64_t size),
		     void *arg);

/* vaddr of the PLT stub that jumps to the imported or exported function
 * name (the target of `call name@plt`: a .plt or .plt.sec entry whose
 * `jmp *slot(%rip)` reads name's R_X86_64_JUMP_SLOT). Returns 0 or -ENOENT. */
int tm_elf_plt_stub(const struct tm_elf *e, const char *name, uint64_t *vaddr);

#endif
