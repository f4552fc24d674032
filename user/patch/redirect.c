/* Redirect mode: pointer writes through /proc/PID/mem (see redirect.h).
 *
 * Why no stop of the process: an aligned 8-byte pointer is written with one
 * pwrite, and both the old and the new value are valid for any thread that
 * loads either (the stub jumps where the old value pointed). On this kernel
 * the copy into the target page is the kernel's memcpy (`rep movsb` with
 * FSRM); a reader racing 2,000,000 such writes saw no torn value
 * (tests/redirect, docs/distribution-builds.md). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "patch/redirect.h"
#include "patch/mem_write.h"

#define STUB_SLOT 16 /* bytes per padding stub: 5 used, the rest stays zero */
#define JMP_LEN 5


static uint64_t fn_get(const struct tm_allocator *a, int fn)
{
	const uint64_t f[TM_NFNS] = {a->malloc_fn, a->calloc_fn, a->realloc_fn, a->free_fn};

	return f[fn];
}

/* Read the three live structs into live[] (struct_addr kept from t). */
static int read_live(int fd, const struct tm_target *t, struct tm_allocator live[TM_NDOMAINS])
{
	for (int d = 0; d < TM_NDOMAINS; d++) {
		uint64_t v[5];
		int err = tm_mem_read(fd, t->alloc[d].struct_addr, v, sizeof(v));

		if (err)
			return err;
		live[d] = (struct tm_allocator){
			.ctx = v[0], .malloc_fn = v[1], .calloc_fn = v[2], .realloc_fn = v[3],
			.free_fn = v[4], .struct_addr = t->alloc[d].struct_addr,
		};
	}
	return 0;
}

enum stub_kind { STUB_PADDING, STUB_EXISTING, STUB_NOP };

struct plan {
	unsigned n;
	uint64_t impl[TM_DEVIRT_MAX_IMPLS];
	uint64_t stub[TM_DEVIRT_MAX_IMPLS];
	int existing[TM_DEVIRT_MAX_IMPLS];  /* enum stub_kind */
	const struct tm_devirt_nop_site *nop[TM_DEVIRT_MAX_IMPLS];
};

/* Choose a stub per distinct implementation: a proven `jmp impl` in the file,
 * else the next nop site (devirt.h: it can carry the probes), else the next
 * 16-byte slot of the padding. The order is fixed by the file alone, so a
 * later tmbpf plans the same stubs and recognises (adopts) them. */
static int plan_stubs(const struct tm_devirt *d, struct plan *p, char *err, size_t errlen)
{
	unsigned pad_used = 0, nop_used = 0;

	memset(p, 0, sizeof(*p));
	for (int dom = 0; dom < TM_NDOMAINS; dom++) {
		for (int fn = 0; fn < TM_NFNS; fn++) {
			uint64_t a = fn_get(&d->file_alloc[dom], fn);
			const struct tm_devirt_impl *im = NULL;
			unsigned k;

			for (k = 0; k < p->n && p->impl[k] != a; k++)
				;
			if (k < p->n)
				continue;
			for (unsigned j = 0; j < d->nimpls; j++)
				if (d->impl[j].addr == a)
					im = &d->impl[j];
			p->impl[k] = a;
			p->n++;
			/* Only a proven instruction: no other instruction can start
			 * inside it, so no other uprobe can patch its bytes. */
			if (im && im->jmp_stub && im->jmp_stub_probe_ok) {
				p->stub[k] = im->jmp_stub;
				p->existing[k] = STUB_EXISTING;
				continue;
			}
			if (nop_used < d->nnop_sites) {
				p->nop[k] = &d->nop_site[nop_used++];
				p->stub[k] = p->nop[k]->addr;
				p->existing[k] = STUB_NOP;
				continue;
			}
			if (!d->pad_addr || (pad_used + 1) * STUB_SLOT > d->pad_len) {
				snprintf(err, errlen, "no room for a jmp stub to 0x%" PRIx64 " (no jmp "
					 "in the file, %u bytes of padding): not redirecting", a,
					 d->pad_len);
				return -ENOSPC;
			}
			p->stub[k] = d->pad_addr + STUB_SLOT * pad_used++;
			if (p->impl[k] - (p->stub[k] + JMP_LEN) + 0x80000000ull > 0xffffffffull) {
				snprintf(err, errlen, "stub at 0x%" PRIx64 " cannot reach 0x%" PRIx64,
					 p->stub[k], a);
				return -ERANGE;
			}
		}
	}
	return 0;
}

static uint64_t plan_stub(const struct plan *p, uint64_t impl)
{
	for (unsigned k = 0; k < p->n; k++)
		if (p->impl[k] == impl)
			return p->stub[k];
	return 0;
}

/* Refuse unless every pointer holds its default or the stub this redirect
 * would write (left by an earlier tmbpf: adopted, restored at the end). */
static int check_pointers(const struct tm_target *t, const struct tm_devirt *d,
			  const struct tm_allocator live[TM_NDOMAINS], const struct plan *p,
			  char *err, size_t errlen)
{
	for (int dom = 0; dom < TM_NDOMAINS; dom++) {
		const struct tm_allocator *f = &d->file_alloc[dom];

		if (live[dom].ctx != f->ctx) {
			snprintf(err, errlen, "PID %d: the %s allocator is already hooked (ctx 0x%" PRIx64
				 "): not redirecting, tracing the functions it names",
				 (int)t->pid, tm_alloc_domain_name(dom), live[dom].ctx);
			return -EBUSY;
		}
		for (int fn = 0; fn < TM_NFNS; fn++) {
			uint64_t v = fn_get(&live[dom], fn), def = fn_get(f, fn);

			if (v == def || v == plan_stub(p, def))
				continue;
			snprintf(err, errlen, "PID %d: the %s allocator is already hooked (%s = 0x%"
				 PRIx64 ", default 0x%" PRIx64 "): not redirecting, tracing the "
				 "functions it names", (int)t->pid, tm_alloc_domain_name(dom),
				 tm_alloc_fn_name(fn), v, def);
			return -EBUSY;
		}
	}
	return 0;
}

/* A nop stub (devirt.h): `jmp impl` right after the nop at site->addr. The
 * nop and the padding after it must be the file's bytes in the process, or
 * the jmp this very stub holds (an earlier tmbpf wrote it). Nothing runs
 * these bytes before a pointer names the site. */
static int write_nop_stub(int memfd, int filefd, const struct tm_target *t,
			  const struct tm_devirt_nop_site *site, uint64_t impl, char *err,
			  size_t errlen)
{
	uint8_t file[16], mem[16], jmp[JMP_LEN];
	size_t len = site->nop_len + JMP_LEN;
	uint64_t at = site->addr + site->nop_len;
	int32_t rel = (int32_t)(impl - (at + JMP_LEN));
	int rc;

	if (len > sizeof(file) || impl - (at + JMP_LEN) + 0x80000000ull > 0xffffffffull) {
		snprintf(err, errlen, "nop stub at 0x%" PRIx64 " cannot reach 0x%" PRIx64,
			 site->addr, impl);
		return -ERANGE;
	}
	jmp[0] = 0xe9;
	memcpy(jmp + 1, &rel, 4);
	if (pread(filefd, file, len, (off_t)site->offset) != (ssize_t)len) {
		snprintf(err, errlen, "%s: cannot read the nop at 0x%" PRIx64, t->map_path,
			 site->addr);
		return -EIO;
	}
	rc = tm_mem_read(memfd, site->addr, mem, len);
	if (rc) {
		snprintf(err, errlen, "PID %d: cannot read 0x%" PRIx64 ": %s", (int)t->pid,
			 site->addr, strerror(-rc));
		return rc;
	}
	if (memcmp(mem, file, site->nop_len) ||
	    (memcmp(mem + site->nop_len, file + site->nop_len, JMP_LEN) &&
	     memcmp(mem + site->nop_len, jmp, JMP_LEN))) {
		snprintf(err, errlen, "PID %d: the padding at 0x%" PRIx64 " was changed by someone "
			 "else: not redirecting", (int)t->pid, site->addr);
		return -EBUSY;
	}
	if (!memcmp(mem + site->nop_len, jmp, JMP_LEN))
		return 0; /* ours, from an earlier redirect */
	rc = tm_mem_write(memfd, at, jmp, JMP_LEN);
	if (!rc)
		rc = tm_mem_read(memfd, at, mem, JMP_LEN);
	if (!rc && memcmp(mem, jmp, JMP_LEN))
		rc = -EIO;
	if (rc)
		snprintf(err, errlen, "PID %d: cannot write a stub at 0x%" PRIx64 ": %s", (int)t->pid,
			 at, strerror(-rc));
	return rc;
}

/* Write the padding stubs: each 16-byte slot must be zero in the file and
 * zero or already this very stub in the process. */
static int write_stubs(int memfd, const struct tm_target *t, const struct tm_devirt *d,
		       const struct plan *p, char *err, size_t errlen)
{
	int filefd = open(t->elf_path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (filefd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", t->elf_path, strerror(errno));
		return rc;
	}
	for (unsigned k = 0; k < p->n && !rc; k++) {
		uint8_t want[STUB_SLOT] = {0}, file[STUB_SLOT], mem[STUB_SLOT], zero[STUB_SLOT] = {0};
		int32_t rel = (int32_t)(p->impl[k] - (p->stub[k] + JMP_LEN));

		if (p->existing[k] == STUB_NOP) {
			rc = write_nop_stub(memfd, filefd, t, p->nop[k], p->impl[k], err, errlen);
			continue;
		}
		if (p->existing[k])
			continue;
		want[0] = 0xe9;
		memcpy(want + 1, &rel, 4);
		if (pread(filefd, file, sizeof(file), d->pad_offset + (p->stub[k] - d->pad_addr)) !=
		    (ssize_t)sizeof(file) || memcmp(file, zero, sizeof(zero))) {
			snprintf(err, errlen, "%s: padding at 0x%" PRIx64 " is not zero in the file",
				 t->elf_path, p->stub[k]);
			rc = -EBUSY;
			break;
		}
		rc = tm_mem_read(memfd, p->stub[k], mem, sizeof(mem));
		if (rc) {
			snprintf(err, errlen, "PID %d: cannot read 0x%" PRIx64 ": %s", (int)t->pid,
				 p->stub[k], strerror(-rc));
			break;
		}
		if (!memcmp(mem, want, sizeof(want)))
			continue; /* ours, from an earlier redirect */
		if (memcmp(mem, zero, sizeof(zero))) {
			snprintf(err, errlen, "PID %d: padding at 0x%" PRIx64 " is in use: not "
				 "redirecting", (int)t->pid, p->stub[k]);
			rc = -EBUSY;
			break;
		}
		rc = tm_mem_write(memfd, p->stub[k], want, JMP_LEN);
		if (!rc)
			rc = tm_mem_read(memfd, p->stub[k], mem, sizeof(mem));
		if (!rc && memcmp(mem, want, sizeof(want)))
			rc = -EIO;
		if (rc)
			snprintf(err, errlen, "PID %d: cannot write a stub at 0x%" PRIx64 ": %s",
				 (int)t->pid, p->stub[k], strerror(-rc));
	}
	close(filefd);
	return rc;
}

/* Put back slots still holding our stub; returns how many were not ours. */
static unsigned put_back(int fd, struct tm_redirect *r, char *err, size_t errlen)
{
	unsigned busy = 0;

	for (unsigned i = 0; i < r->nslots; i++) {
		struct tm_redirect_slot *s = &r->slot[i];
		uint64_t cur;

		if (!s->written)
			continue;
		if (tm_mem_read(fd, s->addr, &cur, 8)) {
			s->written = 0; /* process gone: nothing to restore */
			continue;
		}
		if (cur == s->stub && tm_mem_write(fd, s->addr, &s->orig, 8) == 0) {
			s->written = 0;
			continue;
		}
		if (!busy)
			snprintf(err, errlen, "PID %d: allocator pointer at 0x%" PRIx64 " changed "
				 "to 0x%" PRIx64 " since the redirect: left as is", (int)r->pid,
				 s->addr, cur);
		s->written = 0;
		busy++;
	}
	return busy;
}

static int write_pointers(int fd, const struct tm_target *t, const struct tm_devirt *d,
			  const struct plan *p, struct tm_redirect *r, char *err, size_t errlen)
{
	r->nslots = 0;
	for (int dom = 0; dom < TM_NDOMAINS; dom++) {
		for (int fn = 0; fn < TM_NFNS; fn++) {
			struct tm_redirect_slot *s = &r->slot[r->nslots++];
			uint64_t cur;
			int rc;

			s->addr = t->alloc[dom].struct_addr + 8 + 8 * fn;
			s->orig = fn_get(&d->file_alloc[dom], fn);
			s->stub = plan_stub(p, s->orig);
			s->written = 0;
			if (s->addr % 8) {
				snprintf(err, errlen, "PID %d: allocator pointer at 0x%" PRIx64
					 " is not 8-byte aligned", (int)t->pid, s->addr);
				return -EINVAL;
			}
			rc = tm_mem_read(fd, s->addr, &cur, 8);
			if (!rc && cur != s->orig && cur != s->stub)
				rc = -EBUSY;
			if (!rc && cur == s->orig)
				rc = tm_mem_write(fd, s->addr, &s->stub, 8);
			else if (!rc)
				r->adopted++; /* our stub already: an earlier tmbpf died */
			if (rc) {
				snprintf(err, errlen, "PID %d: %s.%s changed or unwritable during "
					 "the redirect (%s): rolled back", (int)t->pid,
					 tm_alloc_domain_name(dom), tm_alloc_fn_name(fn),
					 strerror(-rc));
				return rc;
			}
			s->written = 1;
		}
	}
	return 0;
}

static void fill_probes(const struct tm_devirt *d, const struct plan *p, struct tm_redirect *r)
{
	for (int dom = 0; dom < TM_NDOMAINS; dom++) {
		for (int fn = 0; fn < TM_NFNS; fn++) {
			struct tm_redirect_probe *pr = &r->probe[dom][fn];
			uint64_t impl = fn_get(&d->file_alloc[dom], fn);
			uint64_t stub = plan_stub(p, impl);
			int existing = 0;

			for (unsigned k = 0; k < p->n; k++)
				if (p->impl[k] == impl)
					existing = p->existing[k];
			pr->impl = impl;
			/* A file jmp and a nop stub start with an instruction the
			 * kernel emulates from the file: probe the stub itself. */
			pr->via_stub = existing != STUB_PADDING;
			pr->nop_stub = existing == STUB_NOP;
			pr->entry_is_impl = !pr->via_stub;
			pr->entry = pr->ret = pr->via_stub ? stub : impl;
		}
	}
	for (unsigned k = 0; k < p->n; k++) {
		if (p->existing[k] == STUB_EXISTING)
			r->existing_stubs++;
		else if (p->existing[k] == STUB_NOP)
			r->nop_stubs++;
		else
			r->written_stubs++;
	}
}

int tm_redirect_apply(struct tm_target *t, struct tm_devirt *d, struct tm_redirect *r, char *err,
		      size_t errlen)
{
	struct tm_allocator live[TM_NDOMAINS];
	struct plan plan;
	int fd, rc;

	memset(r, 0, sizeof(*r));
	r->pid = t->pid;
	fd = tm_mem_open(t->pid, err, errlen);
	if (fd < 0)
		return fd;
	rc = read_live(fd, t, live);
	if (rc) {
		snprintf(err, errlen, "PID %d: cannot read its allocators: %s", (int)t->pid,
			 strerror(-rc));
		goto cleanup;
	}
	memcpy(t->alloc, live, sizeof(live));
	if (!d->defaults_known) {
		snprintf(err, errlen, "PID %d: cannot read the default allocators from %s: not "
			 "redirecting", (int)t->pid, t->elf_path);
		rc = -ENOTSUP;
		goto cleanup;
	}
	rc = plan_stubs(d, &plan, err, errlen);
	if (!rc)
		rc = check_pointers(t, d, live, &plan, err, errlen);
	if (!rc)
		rc = write_stubs(fd, t, d, &plan, err, errlen);
	if (rc)
		goto cleanup;
	rc = write_pointers(fd, t, d, &plan, r, err, errlen);
	if (rc) {
		char ignored[8];

		put_back(fd, r, ignored, sizeof(ignored));
		goto cleanup;
	}
	fill_probes(d, &plan, r);
	memcpy(t->alloc, d->file_alloc, sizeof(t->alloc)); /* what the pointers mean */
	r->applied = 1;
	d->coverage = TM_COVERAGE_REDIRECT;
	snprintf(r->summary, sizeof(r->summary),
		 "redirected the %u allocator pointers of PID %d to jmp stubs (%u existing, %u "
		 "after a padding nop, %u in padding; %u already redirected) so that inlined "
		 "allocations are traced", r->nslots, (int)t->pid, r->existing_stubs, r->nop_stubs,
		 r->written_stubs, r->adopted);
cleanup:
	close(fd);
	return rc;
}

int tm_redirect_restore(struct tm_redirect *r, char *err, size_t errlen)
{
	unsigned busy;
	int fd;

	if (!r->applied)
		return 0;
	fd = tm_mem_open(r->pid, err, errlen);
	if (fd < 0) {
		r->applied = 0;
		return fd;
	}
	busy = put_back(fd, r, err, errlen);
	r->applied = 0;
	close(fd);
	return busy ? -EBUSY : 0;
}
