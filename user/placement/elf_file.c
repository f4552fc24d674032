/* libelf access to one ELF file. */
#include "placement/elf_file.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tm_elf {
	int fd;
	Elf *elf;
	GElf_Half type;
	Elf_Scn *symtab, *dynsym;
	struct tm_elf_segment *loads;
	size_t nloads;
	struct tm_elf_segment tls;
	int has_tls;
};

static int load_segments(struct tm_elf *e)
{
	size_t phnum;

	if (elf_getphdrnum(e->elf, &phnum))
		return -ENOEXEC;
	e->loads = calloc(phnum ? phnum : 1, sizeof(*e->loads));
	if (!e->loads)
		return -ENOMEM;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		struct tm_elf_segment seg;

		if (!gelf_getphdr(e->elf, (int)i, &ph))
			return -ENOEXEC;
		seg.vaddr = ph.p_vaddr;
		seg.memsz = ph.p_memsz;
		seg.offset = ph.p_offset;
		seg.filesz = ph.p_filesz;
		seg.flags = ph.p_flags;
		seg.align = ph.p_align;
		if (ph.p_type == PT_LOAD)
			e->loads[e->nloads++] = seg;
		else if (ph.p_type == PT_TLS) {
			e->tls = seg;
			e->has_tls = 1;
		}
	}
	return 0;
}

static void find_symbol_tables(struct tm_elf *e)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB)
			e->symtab = scn;
		else if (sh.sh_type == SHT_DYNSYM)
			e->dynsym = scn;
	}
}

struct tm_elf *tm_elf_open(const char *path)
{
	struct tm_elf *e = NULL;
	GElf_Ehdr eh;
	int err = 0;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return errno = ENOEXEC, NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (e->fd < 0) {
		err = -errno;
		goto cleanup;
	}
	e->elf = elf_begin(e->fd, ELF_C_READ_MMAP, NULL);
	if (!e->elf || elf_kind(e->elf) != ELF_K_ELF || !gelf_getehdr(e->elf, &eh) ||
	    eh.e_machine != EM_X86_64 || gelf_getclass(e->elf) != ELFCLASS64) {
		err = -ENOEXEC;
		goto cleanup;
	}
	e->type = eh.e_type;
	err = load_segments(e);
	if (err)
		goto cleanup;
	find_symbol_tables(e);
cleanup:
	if (err) {
		tm_elf_close(e);
		errno = -err;
		return NULL;
	}
	return e;
}

void tm_elf_close(struct tm_elf *e)
{
	if (!e)
		return;
	if (e->elf)
		elf_end(e->elf);
	if (e->fd >= 0)
		close(e->fd);
	free(e->loads);
	free(e);
}

int tm_elf_has_symtab(const struct tm_elf *e)
{
	return e->symtab != NULL;
}

int tm_elf_is_dyn(const struct tm_elf *e)
{
	return e->type == ET_DYN;
}

static int lookup(const struct tm_elf *e, Elf_Scn *scn, const char *name, struct tm_elf_sym *out)
{
	GElf_Shdr sh;
	Elf_Data *data;

	if (!scn || !gelf_getshdr(scn, &sh) || !sh.sh_entsize)
		return -ENOENT;
	data = elf_getdata(scn, NULL);
	if (!data)
		return -ENOENT;
	size_t n = sh.sh_size / sh.sh_entsize;
	for (size_t i = 1; i < n; i++) {
		GElf_Sym s;
		const char *sname;

		if (!gelf_getsym(data, (int)i, &s) || s.st_shndx == SHN_UNDEF)
			continue;
		sname = elf_strptr(e->elf, sh.sh_link, s.st_name);
		if (!sname || strcmp(sname, name))
			continue;
		out->value = s.st_value;
		out->size = s.st_size;
		out->type = GELF_ST_TYPE(s.st_info);
		out->bind = GELF_ST_BIND(s.st_info);
		out->dynamic = scn == e->dynsym;
		return 0;
	}
	return -ENOENT;
}

int tm_elf_symbol(const struct tm_elf *e, const char *name, struct tm_elf_sym *sym)
{
	if (lookup(e, e->symtab, name, sym) == 0)
		return 0;
	return lookup(e, e->dynsym, name, sym);
}

int tm_elf_dynsym(const struct tm_elf *e, const char *name, struct tm_elf_sym *sym)
{
	return lookup(e, e->dynsym, name, sym);
}

size_t tm_elf_nsegments(const struct tm_elf *e)
{
	return e->nloads;
}

const struct tm_elf_segment *tm_elf_segment(const struct tm_elf *e, size_t i)
{
	return i < e->nloads ? &e->loads[i] : NULL;
}

int tm_elf_tls_segment(const struct tm_elf *e, struct tm_elf_segment *tls)
{
	if (!e->has_tls)
		return -ENOENT;
	*tls = e->tls;
	return 0;
}

int tm_elf_vaddr_to_offset(const struct tm_elf *e, uint64_t vaddr, int exec_only, uint64_t *offset)
{
	for (size_t i = 0; i < e->nloads; i++) {
		const struct tm_elf_segment *s = &e->loads[i];

		if (exec_only && !(s->flags & PF_X))
			continue;
		if (vaddr >= s->vaddr && vaddr < s->vaddr + s->filesz) {
			*offset = vaddr - s->vaddr + s->offset;
			return 0;
		}
	}
	return -ENOENT;
}

int tm_elf_vaddr_is_exec(const struct tm_elf *e, uint64_t vaddr)
{
	uint64_t off;

	return tm_elf_vaddr_to_offset(e, vaddr, 1, &off) == 0;
}

int tm_elf_read(const struct tm_elf *e, uint64_t vaddr, void *buf, size_t len)
{
	for (size_t i = 0; i < e->nloads; i++) {
		const struct tm_elf_segment *s = &e->loads[i];

		if (vaddr < s->vaddr || vaddr >= s->vaddr + s->filesz)
			continue;
		if (len > s->vaddr + s->filesz - vaddr)
			return -ENOENT;
		ssize_t n = pread(e->fd, buf, len, (off_t)(vaddr - s->vaddr + s->offset));
		return n == (ssize_t)len ? 0 : -EIO;
	}
	return -ENOENT;
}

int tm_elf_got_slot(const struct tm_elf *e, const char *name, uint64_t *vaddr)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh, symsh;
		Elf_Data *data, *syms;
		Elf_Scn *symscn;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		symscn = elf_getscn(e->elf, sh.sh_link);
		data = elf_getdata(scn, NULL);
		if (!symscn || !gelf_getshdr(symscn, &symsh) || !data)
			continue;
		syms = elf_getdata(symscn, NULL);
		if (!syms)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Rela r;
			GElf_Sym sym;
			const char *n;
			unsigned type;

			if (!gelf_getrela(data, (int)i, &r))
				continue;
			type = GELF_R_TYPE(r.r_info);
			if ((type != R_X86_64_GLOB_DAT && type != R_X86_64_JUMP_SLOT) ||
			    !gelf_getsym(syms, (int)GELF_R_SYM(r.r_info), &sym))
				continue;
			n = elf_strptr(e->elf, symsh.sh_link, sym.st_name);
			if (n && !strcmp(n, name)) {
				*vaddr = r.r_offset;
				return 0;
			}
		}
	}
	return -ENOENT;
}

int tm_elf_dtpmod_slot(const struct tm_elf *e, uint64_t *vaddr)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Rela r;

			if (gelf_getrela(data, (int)i, &r) &&
			    GELF_R_TYPE(r.r_info) == R_X86_64_DTPMOD64) {
				*vaddr = r.r_offset;
				return 0;
			}
		}
	}
	return -ENOENT;
}

int tm_elf_each_func(const struct tm_elf *e,
		     int (*fn)(void *arg, const char *name, uint64_t vaddr, uint64_t size),
		     void *arg)
{
	GElf_Shdr sh;
	Elf_Data *data;

	if (!e->symtab || !gelf_getshdr(e->symtab, &sh) || !sh.sh_entsize)
		return -ENOENT;
	data = elf_getdata(e->symtab, NULL);
	if (!data)
		return -ENOENT;
	for (size_t i = 1; i < sh.sh_size / sh.sh_entsize; i++) {
		GElf_Sym s;
		const char *name;
		int rc;

		if (!gelf_getsym(data, (int)i, &s) || s.st_shndx == SHN_UNDEF || !s.st_size ||
		    GELF_ST_TYPE(s.st_info) != STT_FUNC)
			continue;
		name = elf_strptr(e->elf, sh.sh_link, s.st_name);
		rc = fn(arg, name ? name : "", s.st_value, s.st_size);
		if (rc)
			return rc;
	}
	return 0;
}

/* The GOT slot of name's R_X86_64_JUMP_SLOT relocation. */
static int jump_slot(const struct tm_elf *e, const char *name, uint64_t *slot)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh, symsh;
		Elf_Data *data, *syms;
		Elf_Scn *symscn;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		symscn = elf_getscn(e->elf, sh.sh_link);
		if (!symscn || !gelf_getshdr(symscn, &symsh))
			continue;
		data = elf_getdata(scn, NULL);
		syms = elf_getdata(symscn, NULL);
		if (!data || !syms)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Rela r;
			GElf_Sym s;
			const char *sname;

			if (!gelf_getrela(data, (int)i, &r) ||
			    GELF_R_TYPE(r.r_info) != R_X86_64_JUMP_SLOT ||
			    !gelf_getsym(syms, (int)GELF_R_SYM(r.r_info), &s))
				continue;
			sname = elf_strptr(e->elf, symsh.sh_link, s.st_name);
			if (sname && strcmp(sname, name) == 0) {
				*slot = r.r_offset;
				return 0;
			}
		}
	}
	return -ENOENT;
}

int tm_elf_plt_stub(const struct tm_elf *e, const char *name, uint64_t *vaddr)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	uint64_t slot;

	if (jump_slot(e, name, &slot) || elf_getshdrstrndx(e->elf, &shstrndx))
		return -ENOENT;
	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;
		const char *sname;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS)
			continue;
		sname = elf_strptr(e->elf, shstrndx, sh.sh_name);
		if (!sname || (strcmp(sname, ".plt") && strcmp(sname, ".plt.sec")))
			continue;
		data = elf_getdata(scn, NULL);
		if (!data || data->d_size < sh.sh_size)
			continue;
		/* Entries are 16 bytes: [endbr64] [bnd] jmp *slot(%rip), ... */
		for (uint64_t at = 0; at + 16 <= sh.sh_size; at += 16) {
			const uint8_t *c = (const uint8_t *)data->d_buf + at;

			for (int i = 0; i + 6 <= 16; i++) {
				int32_t disp;

				if (c[i] != 0xff || c[i + 1] != 0x25)
					continue;
				memcpy(&disp, c + i + 2, 4);
				if (sh.sh_addr + at + i + 6 + (int64_t)disp == slot) {
					*vaddr = sh.sh_addr + at;
					return 0;
				}
				break;
			}
		}
	}
	return -ENOENT;
}

int tm_elf_needs(const struct tm_elf *e, const char *prefix)
{
	Elf_Scn *scn = NULL;
	size_t plen = strlen(prefix);

	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC || !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Dyn dyn;
			const char *name;

			if (!gelf_getdyn(d, (int)i, &dyn) || dyn.d_tag != DT_NEEDED)
				continue;
			name = elf_strptr(e->elf, sh.sh_link, dyn.d_un.d_val);
			if (name && !strncmp(name, prefix, plen))
				return 1;
		}
	}
	return 0;
}
