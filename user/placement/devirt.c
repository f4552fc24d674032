/* Counting devirtualization guards in an ELF file. The scan is a byte scan
 * of every executable PT_LOAD: x86 code cannot be split into instructions
 * without function bounds, and a compare is only counted when it names the
 * exact implementation address, is followed by je/jne, and one path of that
 * branch reaches an indirect call within a few decoded instructions. That
 * last test tells a guard (`if (ptr == impl) inline; else call *ptr`) from
 * obmalloc's own "is pymalloc in use" checks. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "placement/devirt.h"
#include "placement/x86_insn.h"

/* DWARF pointer encodings used by .eh_frame_hdr (no public header has them). */
#define EH_PE_UDATA4 0x03
#define EH_PE_SDATA4 0x0b
#define EH_PE_DATAREL 0x30

/* Instructions followed on the not-equal path looking for `call *`. */
#define GUARD_PATH_INSNS 16
/* Instructions between `lea impl(%rip),%reg` / `mov $impl,%reg` and its cmp. */
#define LOAD_TO_CMP_INSNS 6

struct image {
	const uint8_t *p;
	size_t size;
	const Elf64_Ehdr *eh;
	const Elf64_Phdr *ph;
	unsigned phnum;
	const Elf64_Shdr *sh;
	unsigned shnum;
};

static void image_close(struct image *im)
{
	if (im->p)
		munmap((void *)im->p, im->size);
	memset(im, 0, sizeof(*im));
}

static int image_open(const char *path, struct image *im)
{
	struct stat st;
	int fd, err = 0;
	void *p;

	memset(im, 0, sizeof(*im));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto cleanup;
	}
	if ((size_t)st.st_size < sizeof(Elf64_Ehdr)) {
		err = -ENOEXEC;
		goto cleanup;
	}
	p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		err = -errno;
		goto cleanup;
	}
	im->p = p;
	im->size = st.st_size;
	im->eh = p;
	if (memcmp(im->eh->e_ident, ELFMAG, SELFMAG) || im->eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    im->eh->e_machine != EM_X86_64 || im->eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    im->eh->e_phoff > im->size ||
	    (size_t)im->eh->e_phnum * sizeof(Elf64_Phdr) > im->size - im->eh->e_phoff) {
		err = -ENOEXEC;
		goto cleanup;
	}
	im->ph = (const Elf64_Phdr *)(im->p + im->eh->e_phoff);
	im->phnum = im->eh->e_phnum;
	if (im->eh->e_shentsize == sizeof(Elf64_Shdr) && im->eh->e_shoff < im->size &&
	    (size_t)im->eh->e_shnum * sizeof(Elf64_Shdr) <= im->size - im->eh->e_shoff) {
		im->sh = (const Elf64_Shdr *)(im->p + im->eh->e_shoff);
		im->shnum = im->eh->e_shnum;
	}
cleanup:
	close(fd);
	if (err)
		image_close(im);
	return err;
}

/* File bytes of [vaddr, vaddr+len) when one PT_LOAD maps all of them from
 * the file (exec: only PF_X segments); NULL otherwise. */
static const uint8_t *image_at(const struct image *im, uint64_t vaddr, size_t len, int exec)
{
	for (unsigned i = 0; i < im->phnum; i++) {
		const Elf64_Phdr *ph = &im->ph[i];

		if (ph->p_type != PT_LOAD || (exec && !(ph->p_flags & PF_X)))
			continue;
		if (vaddr < ph->p_vaddr || vaddr - ph->p_vaddr > ph->p_filesz ||
		    len > ph->p_filesz - (vaddr - ph->p_vaddr))
			continue;
		if (ph->p_offset > im->size || ph->p_filesz > im->size - ph->p_offset)
			return NULL;
		return im->p + ph->p_offset + (vaddr - ph->p_vaddr);
	}
	return NULL;
}

/* File offset of vaddr in an executable PT_LOAD. 0 or -ENOENT. */
static int image_offset(const struct image *im, uint64_t vaddr, uint64_t *off)
{
	for (unsigned i = 0; i < im->phnum; i++) {
		const Elf64_Phdr *ph = &im->ph[i];

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && vaddr >= ph->p_vaddr &&
		    vaddr - ph->p_vaddr < ph->p_filesz) {
			*off = ph->p_offset + (vaddr - ph->p_vaddr);
			return 0;
		}
	}
	return -ENOENT;
}

static int image_has_symtab(const struct image *im)
{
	for (unsigned i = 0; i < im->shnum; i++)
		if (im->sh[i].sh_type == SHT_SYMTAB)
			return 1;
	return 0;
}

static int32_t rd32(const uint8_t *c)
{
	int32_t v;

	memcpy(&v, c, 4);
	return v;
}

/* ---- instruction boundaries from .eh_frame_hdr ------------------------- */

/* The .eh_frame_hdr search table: count entries, table at *tab (pairs of
 * datarel sdata4: initial location, FDE address). 0 or -ENOENT. */
static int fde_table(const struct image *im, const Elf64_Phdr **ehp, const uint8_t **tab,
		     uint32_t *count)
{
	const Elf64_Phdr *eh = NULL;
	const uint8_t *hdr;

	for (unsigned i = 0; i < im->phnum; i++)
		if (im->ph[i].p_type == PT_GNU_EH_FRAME)
			eh = &im->ph[i];
	if (!eh || eh->p_filesz < 12 || !(hdr = image_at(im, eh->p_vaddr, eh->p_filesz, 0)))
		return -ENOENT;
	/* version 1; eh_frame_ptr sdata4 (pcrel or not); fde_count udata4;
	 * table datarel sdata4: what binutils writes. Anything else: no proof. */
	if (hdr[0] != 1 || (hdr[1] & 0x0f) != EH_PE_SDATA4 || hdr[2] != EH_PE_UDATA4 ||
	    hdr[3] != (EH_PE_DATAREL | EH_PE_SDATA4))
		return -ENOENT;
	*count = (uint32_t)rd32(hdr + 8);
	if (*count == 0 || (uint64_t)*count * 8 > eh->p_filesz - 12)
		return -ENOENT;
	*ehp = eh;
	*tab = hdr + 12;
	return 0;
}

/* [start, end) of the i-th FDE of the table. 0 or -ENOENT. */
static int fde_range(const struct image *im, const Elf64_Phdr *eh, const uint8_t *tab, uint32_t i,
		     uint64_t *start, uint64_t *end)
{
	int64_t pc = (int64_t)eh->p_vaddr + rd32(tab + 8 * i);
	const uint8_t *fde = image_at(im, eh->p_vaddr + rd32(tab + 8 * i + 4), 16, 0);

	if (!fde || rd32(fde) == -1)
		return -ENOENT;
	if ((int64_t)(eh->p_vaddr + rd32(tab + 8 * i + 4) + 8) + rd32(fde + 8) != pc)
		return -ENOENT;
	*start = pc;
	*end = pc + (uint32_t)rd32(fde + 12);
	return 0;
}

/* Start and end of the function (FDE) that contains vaddr, from the binary
 * search table of .eh_frame_hdr. Returns 0 or -ENOENT. */
static int fde_bounds(const struct image *im, uint64_t vaddr, uint64_t *start, uint64_t *end)
{
	const Elf64_Phdr *eh;
	const uint8_t *tab;
	uint32_t count, lo = 0, hi;

	if (fde_table(im, &eh, &tab, &count))
		return -ENOENT;
	hi = count;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if ((int64_t)eh->p_vaddr + rd32(tab + 8 * mid) <= (int64_t)vaddr)
			lo = mid;
		else
			hi = mid;
	}
	if (fde_range(im, eh, tab, lo, start, end) || *start > vaddr)
		return -ENOENT;
	return 0;
}

/* 1 when vaddr..vaddr+len is one instruction reached by decoding its
 * function linearly from the start. */
static int is_insn_boundary(const struct image *im, uint64_t vaddr, size_t len)
{
	uint64_t start, end, pc;
	const uint8_t *code;

	if (fde_bounds(im, vaddr, &start, &end) || vaddr + len > end)
		return 0;
	code = image_at(im, start, end - start, 1);
	if (!code)
		return 0;
	for (pc = start; pc < vaddr;) {
		size_t n = tm_x86_insn_len(code + (pc - start), end - pc);

		if (n == 0)
			return 0;
		pc += n;
	}
	return pc == vaddr && tm_x86_insn_len(code + (pc - start), end - pc) == len;
}

/* ---- guards --------------------------------------------------------------- */

struct seg {
	uint64_t vaddr;
	const uint8_t *bytes;
	size_t len;
};

static const uint8_t *seg_at(const struct seg *s, uint64_t va, size_t need, size_t *avail)
{
	if (va < s->vaddr || va - s->vaddr >= s->len)
		return NULL;
	*avail = s->len - (va - s->vaddr);
	return *avail >= need ? s->bytes + (va - s->vaddr) : NULL;
}

/* The instruction at va decoded, or -1 (outside the segment, not decoded). */
static int decode_at(const struct seg *s, uint64_t va, struct tm_x86_insn *in)
{
	size_t avail;
	const uint8_t *c = seg_at(s, va, 1, &avail);

	return c ? tm_x86_decode(c, avail, in) : -1;
}

/* From the instruction at va, does control reach an indirect call within a
 * few instructions? Unconditional jumps are followed; conditional ones fall
 * through; ret and anything undecoded end the walk. */
static int reaches_indirect_call(const struct seg *s, uint64_t va)
{
	for (int k = 0; k < GUARD_PATH_INSNS; k++) {
		struct tm_x86_insn in;
		uint64_t target;

		if (decode_at(s, va, &in))
			return 0;
		switch (tm_x86_flow(&in)) {
		case TM_X86_CALL_INDIRECT: case TM_X86_JMP_INDIRECT:
			return 1;
		case TM_X86_RET:
			return 0;
		case TM_X86_JMP:
			if (tm_x86_branch_target(&in, va, &target))
				return 0;
			va = target;
			break;
		default:
			va += in.len;
		}
	}
	return 0;
}

/* A compare ending at va: is it followed by je/jne whose not-equal path
 * reaches an indirect call? */
static int is_guard(const struct seg *s, uint64_t va)
{
	struct tm_x86_insn in;
	uint64_t taken;
	uint8_t cc;

	if (decode_at(s, va, &in) || tm_x86_flow(&in) != TM_X86_JCC ||
	    tm_x86_branch_target(&in, va, &taken))
		return 0;
	cc = in.op & 0x0f; /* 70+cc / 0f 80+cc */
	if ((in.map == 0 && (in.op & 0xf0) != 0x70) || (cc != 4 && cc != 5))
		return 0; /* only je / jne */
	return reaches_indirect_call(s, cc == 5 ? taken : va + in.len);
}

/* After `lea v(%rip),%reg` or `mov $v,%reg` ending at va: the first cmp
 * within a few instructions that uses reg against a register or rip-relative
 * memory. Returns the vaddr after that cmp, or 0. */
static uint64_t cmp_with_reg(const struct seg *s, uint64_t va, int reg)
{
	for (int k = 0; k < LOAD_TO_CMP_INSNS; k++) {
		struct tm_x86_insn in;
		enum tm_x86_flow f;

		if (decode_at(s, va, &in))
			return 0;
		/* REX.W cmp r/m64,r64 (39) or r64,r/m64 (3b) */
		if (in.map == 0 && (in.op == 0x39 || in.op == 0x3b) && (in.rex & 8)) {
			if (in.reg == reg && (in.mod == 3 || in.rip_relative))
				return va + in.len;
			if (in.mod == 3 && in.rm == reg)
				return va + in.len;
		}
		f = tm_x86_flow(&in);
		if (f == TM_X86_RET || f == TM_X86_JMP)
			return 0;
		va += in.len;
	}
	return 0;
}

static void count_site(const struct seg *s, uint64_t cmp_end, struct tm_devirt_impl *im)
{
	im->compares++;
	if (is_guard(s, cmp_end))
		im->guards++;
}

/* One executable segment against the n impl vaddrs (link-time addresses). */
static void scan_segment(const struct image *img, const struct seg *s, int pie, const uint64_t *v,
			 unsigned n, struct tm_devirt_impl *out)
{
	for (size_t i = 0; i + 6 <= s->len; i++) {
		const uint8_t *c = s->bytes + i;
		size_t left = s->len - i;
		uint64_t va = s->vaddr + i;

		for (unsigned k = 0; k < n; k++) {
			int64_t want = (int64_t)v[k];

			if (c[0] == 0xe9 && (int64_t)va + 5 + rd32(c + 1) == want) {
				out[k].jmps++;
				if (!out[k].jmp_stub_probe_ok) {
					int ok = is_insn_boundary(img, va, 5);

					if (ok || !out[k].jmp_stub) {
						out[k].jmp_stub = va;
						out[k].jmp_stub_probe_ok = ok;
					}
				}
			}
			/* lea v(%rip),%reg: PIE and non-PIE */
			if (left >= 7 && (c[0] == 0x48 || c[0] == 0x4c) && c[1] == 0x8d &&
			    (c[2] & 0xc7) == 0x05 && (int64_t)va + 7 + rd32(c + 3) == want) {
				int reg = ((c[2] >> 3) & 7) | ((c[0] & 4) ? 8 : 0);
				uint64_t end = cmp_with_reg(s, va + 7, reg);

				if (end)
					count_site(s, end, &out[k]);
			}
			if (pie)
				continue;
			/* Absolute immediates exist only at fixed addresses. */
			if (c[0] == 0x48 && c[1] == 0x3d && rd32(c + 2) == want) {
				count_site(s, va + 6, &out[k]);
			} else if (left >= 7 && (c[0] == 0x48 || c[0] == 0x49) && c[1] == 0x81 &&
				   (c[2] & 0xf8) == 0xf8 && rd32(c + 3) == want) {
				count_site(s, va + 7, &out[k]);
			} else if (left >= 11 && c[0] == 0x48 && c[1] == 0x81 && c[2] == 0x3d &&
				   rd32(c + 7) == want) {
				count_site(s, va + 11, &out[k]);
			} else if ((c[0] & 0xf8) == 0xb8 && rd32(c + 1) == want) {
				uint64_t end = cmp_with_reg(s, va + 5, c[0] & 7);

				if (end)
					count_site(s, end, &out[k]);
			} else if (c[0] == 0x41 && (c[1] & 0xf8) == 0xb8 && rd32(c + 2) == want) {
				uint64_t end = cmp_with_reg(s, va + 6, 8 | (c[1] & 7));

				if (end)
					count_site(s, end, &out[k]);
			}
		}
	}
}

static void scan_image(const struct image *img, uint64_t bias, const uint64_t *addrs, unsigned n,
		       struct tm_devirt_impl *out)
{
	uint64_t v[TM_DEVIRT_MAX_IMPLS];
	int pie = img->eh->e_type == ET_DYN;

	for (unsigned k = 0; k < n; k++) {
		memset(&out[k], 0, sizeof(out[k]));
		out[k].addr = addrs[k];
		v[k] = addrs[k] - bias;
	}
	for (unsigned i = 0; i < img->phnum; i++) {
		const Elf64_Phdr *ph = &img->ph[i];
		struct seg s;

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		s.vaddr = ph->p_vaddr;
		s.len = ph->p_filesz;
		s.bytes = image_at(img, ph->p_vaddr, ph->p_filesz, 1);
		if (s.bytes)
			scan_segment(img, &s, pie, v, n, out);
	}
	for (unsigned k = 0; k < n; k++)
		if (out[k].jmp_stub)
			out[k].jmp_stub += bias;
}

int tm_devirt_scan_file(const char *path, uint64_t load_bias, const uint64_t *addrs, unsigned n,
			struct tm_devirt_impl *out, int *stripped, int *pie)
{
	struct image img;
	int err;

	if (n > TM_DEVIRT_MAX_IMPLS)
		return -EINVAL;
	err = image_open(path, &img);
	if (err)
		return err;
	scan_image(&img, load_bias, addrs, n, out);
	if (stripped)
		*stripped = !image_has_symtab(&img);
	if (pie)
		*pie = img.eh->e_type == ET_DYN;
	image_close(&img);
	return 0;
}

/* ---- defaults and padding --------------------------------------------------- */

/* The initial value of the 8 bytes at vaddr: a RELATIVE relocation's addend
 * (+bias) in a PIE/shared object, the file bytes otherwise. -ENOENT when the
 * slot is not initialized data or carries a symbolic relocation. */
static int initial_qword(const struct image *im, uint64_t bias, uint64_t vaddr, uint64_t *val)
{
	const uint8_t *b = image_at(im, vaddr, 8, 0);

	for (unsigned i = 0; i < im->shnum; i++) {
		const Elf64_Shdr *sh = &im->sh[i];
		const Elf64_Rela *r;
		size_t cnt;

		if (sh->sh_type != SHT_RELA || sh->sh_entsize != sizeof(Elf64_Rela) ||
		    sh->sh_offset > im->size || sh->sh_size > im->size - sh->sh_offset)
			continue;
		r = (const Elf64_Rela *)(im->p + sh->sh_offset);
		cnt = sh->sh_size / sizeof(*r);
		for (size_t j = 0; j < cnt; j++) {
			if (r[j].r_offset != vaddr)
				continue;
			if (ELF64_R_TYPE(r[j].r_info) != R_X86_64_RELATIVE)
				return -ENOENT;
			*val = r[j].r_addend + bias;
			return 0;
		}
	}
	if (!b)
		return -ENOENT;
	memcpy(val, b, 8);
	if (*val && im->eh->e_type == ET_DYN)
		return -ENOENT; /* a pointer without relocation: not a pointer we understand */
	return 0;
}

static int read_defaults(const struct image *im, uint64_t bias, const struct tm_allocator *live,
			 struct tm_devirt *d)
{
	for (int dom = 0; dom < TM_NDOMAINS; dom++) {
		uint64_t base = live[dom].struct_addr, v[5];

		if (!base || base < bias)
			return -ENOENT;
		for (int i = 0; i < 5; i++)
			if (initial_qword(im, bias, base - bias + 8 * i, &v[i]))
				return -ENOENT;
		d->file_alloc[dom] = (struct tm_allocator){
			.ctx = v[0], .malloc_fn = v[1], .calloc_fn = v[2], .realloc_fn = v[3],
			.free_fn = v[4], .struct_addr = base,
		};
	}
	return 0;
}

static int same_allocator(const struct tm_allocator *a, const struct tm_allocator *b)
{
	return a->ctx == b->ctx && a->malloc_fn == b->malloc_fn && a->calloc_fn == b->calloc_fn &&
	       a->realloc_fn == b->realloc_fn && a->free_fn == b->free_fn;
}

/* Zero bytes after the last executable PT_LOAD up to its page end, in the
 * file. The memory image of that page is the same file page. */
static void find_padding(const struct image *im, uint64_t bias, struct tm_devirt *d)
{
	const Elf64_Phdr *last = NULL;
	uint64_t start, end, off;

	for (unsigned i = 0; i < im->phnum; i++) {
		const Elf64_Phdr *ph = &im->ph[i];

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) &&
		    (!last || ph->p_vaddr > last->p_vaddr))
			last = ph;
	}
	if (!last)
		return;
	start = (last->p_vaddr + last->p_filesz + 15) & ~15ull;
	end = (last->p_vaddr + last->p_filesz + 4095) & ~4095ull;
	off = last->p_offset + (start - last->p_vaddr);
	if (start >= end || off > im->size)
		return;
	if (end - start > im->size - off)
		end = start + (im->size - off); /* past EOF the page reads as zeros, but keep to the file */
	for (uint64_t a = start; a < end; a++)
		if (im->p[off + (a - start)] != 0) {
			end = a & ~15ull;
			break;
		}
	if (end <= start)
		return;
	d->pad_addr = start + bias;
	d->pad_len = end - start;
	d->pad_offset = off;
}

/* ---- nop stubs ---------------------------------------------------------------- */

#define NOP_GAP_MAX 64 /* padding between functions is at most an alignment's worth */
#define JMP_LEN 5

/* Nop lengths a uprobe emulates (x86_insn.h), without the 5-byte one. */
static unsigned emulated_nop_at(const uint8_t *c, size_t avail)
{
	static const unsigned lens[] = { 8, 7, 6, 4, 3 };

	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		struct tm_x86_insn in;
		char name[16];

		if (lens[k] > avail || tm_x86_decode(c, lens[k], &in) || in.len != lens[k] ||
		    tm_x86_is_nop5(c, avail))
			continue;
		if (tm_x86_uprobe_emulated(c, &in, name, sizeof(name)) && in.map == 1 &&
		    in.op == 0x1f)
			return lens[k];
	}
	return 0;
}

/* Every byte of [c, c+len) belongs to a nop (0x90 with prefixes, 0f 1f). */
static int all_nops(const uint8_t *c, size_t len)
{
	size_t at = 0;

	while (at < len) {
		struct tm_x86_insn in;

		if (tm_x86_decode(c + at, len - at, &in))
			return 0;
		if (!((in.map == 0 && in.op == 0x90 && !in.rex && !in.rep) ||
		      (in.map == 1 && in.op == 0x1f)))
			return 0;
		at += in.len;
	}
	return 1;
}

static void find_nop_sites(const struct image *im, uint64_t bias, struct tm_devirt *d)
{
	const Elf64_Phdr *eh;
	const uint8_t *tab;
	uint32_t count;
	uint64_t prev_end = 0;

	if (fde_table(im, &eh, &tab, &count))
		return;
	for (uint32_t i = 0; i < count && d->nnop_sites < TM_DEVIRT_MAX_IMPLS; i++) {
		uint64_t start, end, off;
		const uint8_t *gap;

		if (fde_range(im, eh, tab, i, &start, &end))
			return; /* an FDE not as binutils writes it: no proof of padding */
		if (i == 0 || start <= prev_end || start - prev_end > NOP_GAP_MAX) {
			prev_end = end > prev_end ? end : prev_end;
			continue;
		}
		gap = image_at(im, prev_end, start - prev_end, 1);
		if (gap && all_nops(gap, start - prev_end)) {
			for (uint64_t a = prev_end; a + 3 + JMP_LEN <= start; a++) {
				unsigned n = emulated_nop_at(gap + (a - prev_end), start - a);

				if (!n || a + n + JMP_LEN > start ||
				    image_offset(im, a, &off))
					continue;
				d->nop_site[d->nnop_sites++] = (struct tm_devirt_nop_site){
					.addr = a + bias, .offset = off, .nop_len = n,
					.room = (uint32_t)(start - a),
				};
				break; /* one site per gap */
			}
		}
		prev_end = end;
	}
}

/* ---- public ---------------------------------------------------------------- */

static void describe(struct tm_devirt *d)
{
	size_t len = 0;

	d->detail[0] = 0;
	for (unsigned k = 0; k < d->nimpls; k++) {
		const struct tm_devirt_impl *im = &d->impl[k];
		char doms[16] = "";
		int n;

		if (!im->guards || !im->guards_live)
			continue;
		for (int dom = 0; dom < TM_NDOMAINS; dom++)
			if (im->domains & (1u << dom))
				snprintf(doms + strlen(doms), sizeof(doms) - strlen(doms), "%s%s",
					 doms[0] ? "/" : "", tm_alloc_domain_name(dom));
		n = snprintf(d->detail + len, sizeof(d->detail) - len, "%s%s %s %u",
			     len ? ", " : "inlined guards: ", doms, tm_alloc_fn_name(im->fn), im->guards);
		if (n < 0 || (size_t)n >= sizeof(d->detail) - len)
			break; /* the counts are also in impl[] */
		len += n;
	}
	if (!d->guards && d->leftover_stubs)
		snprintf(d->detail, sizeof(d->detail), "%u allocator pointers still redirected to "
			 "stubs by an earlier tmbpf: every inlined guard fails", d->leftover_stubs);
	else if (!d->guards)
		snprintf(d->detail, sizeof(d->detail),
			 "no inlined guard on the live allocator functions");
	else if (d->defaults_known && !d->defaults && len < sizeof(d->detail))
		snprintf(d->detail + len, sizeof(d->detail) - len, "; pointers already changed, "
			 "no redirect: PYTHONMALLOC=pymalloc_debug at the next start traces all");
}

static void set_fn(struct tm_allocator *a, int fn, uint64_t v)
{
	uint64_t *f[TM_NFNS] = {&a->malloc_fn, &a->calloc_fn, &a->realloc_fn, &a->free_fn};

	*f[fn] = v;
}

/* A live pointer that is a redirect stub jumping to def: a slot of the zero
 * padding (only a redirect writes code there; redirect.c checks the bytes
 * before adopting it) or a proven `jmp def` of the file. */
static int is_stub_of(const struct image *im, uint64_t bias, const struct tm_devirt *d,
		      uint64_t live, uint64_t def)
{
	const uint8_t *c;

	if (d->pad_addr && live >= d->pad_addr && live < d->pad_addr + d->pad_len &&
	    (live - d->pad_addr) % 16 == 0)
		return 1;
	for (unsigned k = 0; k < d->nnop_sites; k++)
		if (live == d->nop_site[k].addr)
			return 1;
	c = image_at(im, live - bias, 5, 1);
	return c && c[0] == 0xe9 &&
	       (int64_t)(live - bias) + 5 + rd32(c + 1) == (int64_t)(def - bias) &&
	       is_insn_boundary(im, live - bias, 5);
}

/* effective[] = the live pointers, with stubs left by an earlier redirect
 * (a tmbpf that died) replaced by the implementation they jump to. */
static void resolve_effective(const struct image *im, uint64_t bias,
			      const struct tm_allocator *live_alloc, struct tm_devirt *d)
{
	for (int dom = 0; dom < TM_NDOMAINS; dom++) {
		d->effective[dom] = live_alloc[dom];
		if (!d->defaults_known)
			continue;
		for (int fn = 0; fn < TM_NFNS; fn++) {
			uint64_t live = tm_allocator_fn(&live_alloc[dom], fn);
			uint64_t def = tm_allocator_fn(&d->file_alloc[dom], fn);

			if (live != def && is_stub_of(im, bias, d, live, def)) {
				set_fn(&d->effective[dom], fn, def);
				d->leftover_stubs++;
			}
		}
	}
}

/* Distinct functions named by effective[], then their guard counts. */
static void scan_impls(const struct image *im, uint64_t bias, struct tm_devirt *d)
{
	struct tm_devirt_impl tmp[TM_DEVIRT_MAX_IMPLS];
	uint64_t addrs[TM_DEVIRT_MAX_IMPLS];

	for (int dom = 0; dom < TM_NDOMAINS; dom++) {
		for (int fn = 0; fn < TM_NFNS; fn++) {
			uint64_t a = tm_allocator_fn(&d->effective[dom], fn);
			unsigned k;

			if (!a)
				continue;
			for (k = 0; k < d->nimpls && addrs[k] != a; k++)
				;
			if (k == d->nimpls) {
				addrs[k] = a;
				d->impl[k].fn = fn;
				d->nimpls++;
			}
			d->impl[k].domains |= 1u << dom;
		}
	}
	scan_image(im, bias, addrs, d->nimpls, tmp);
	for (unsigned k = 0; k < d->nimpls; k++) {
		tmp[k].domains = d->impl[k].domains;
		tmp[k].fn = d->impl[k].fn;
		d->impl[k] = tmp[k];
	}
}

/* A guard hides calls only while the pointer it loads still holds the value
 * it was compiled against: the domain's default, live (not a stub). */
static void count_live_guards(const struct tm_allocator *live, struct tm_devirt *d)
{
	for (unsigned k = 0; k < d->nimpls; k++) {
		struct tm_devirt_impl *im = &d->impl[k];

		im->guards_live = !d->defaults_known; /* unknown: assume the worst */
		for (int dom = 0; dom < TM_NDOMAINS; dom++)
			for (int fn = 0; fn < TM_NFNS; fn++)
				if (tm_allocator_fn(&live[dom], fn) == im->addr &&
				    tm_allocator_fn(&d->file_alloc[dom], fn) == im->addr)
					im->guards_live = 1;
		if (im->guards_live)
			d->guards += im->guards;
	}
}

int tm_devirt_scan(const char *elf_path, uint64_t load_bias,
		   const struct tm_allocator live[TM_NDOMAINS], struct tm_devirt *d)
{
	struct image img;
	int err;

	memset(d, 0, sizeof(*d));
	err = image_open(elf_path, &img);
	if (err)
		return err;
	d->stripped = !image_has_symtab(&img);
	d->pie = img.eh->e_type == ET_DYN;
	d->defaults_known = read_defaults(&img, load_bias, live, d) == 0;
	find_padding(&img, load_bias, d);
	find_nop_sites(&img, load_bias, d);
	resolve_effective(&img, load_bias, live, d);
	if (d->defaults_known) {
		d->defaults = 1;
		for (int dom = 0; dom < TM_NDOMAINS; dom++)
			if (!same_allocator(&d->file_alloc[dom], &d->effective[dom]))
				d->defaults = 0;
	}
	scan_impls(&img, load_bias, d);
	count_live_guards(live, d);
	if (d->guards)
		d->coverage = TM_COVERAGE_PARTIAL;
	else
		d->coverage = d->leftover_stubs ? TM_COVERAGE_REDIRECT : TM_COVERAGE_FULL;
	describe(d);
	image_close(&img);
	return 0;
}

const char *tm_coverage_str(enum tm_coverage c)
{
	switch (c) {
	case TM_COVERAGE_FULL:
		return "full (out-of-line allocator)";
	case TM_COVERAGE_REDIRECT:
		return "redirect (LTO-inlined allocator, pointers redirected)";
	case TM_COVERAGE_PARTIAL:
		return "partial (LTO-inlined allocator, ~1% of allocations: restart with PYTHONMALLOC=malloc)";
	}
	return "unknown";
}

const char *tm_devirt_coverage_str(const struct tm_devirt *d)
{
	if (d->coverage == TM_COVERAGE_PARTIAL && d->defaults_known && !d->defaults)
		return "partial (LTO-inlined allocator, pointers already changed: inlined calls "
		       "missed; restart with PYTHONMALLOC=pymalloc_debug)";
	return tm_coverage_str(d->coverage);
}
