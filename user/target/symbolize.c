/* Code object -> Frame(filename, lineno) and its function's name, from
 * outside the process.
 *
 * Each code object is read once into a cache entry (filename as UTF-8, first
 * line, a copy of the line table). Before an entry is used it is checked
 * against the target's memory (type, co_filename, co_linetable, first line),
 * so a code object freed and replaced at the same address by another code
 * object is read again instead of being misattributed.
 *
 * Code objects die while blocks allocated under them live on: `python
 * prog.py` frees the module's code object (and with it its nested
 * comprehension, genexpr and class-body code) when the module returns, before
 * Py_FinalizeEx, so a snapshot taken at finalization names dead code objects
 * in most of its module-level frames. Their memory then holds a pymalloc or
 * glibc free-list pointer in ob_refcnt (or ob_type), or still the old fields
 * with a line table that has been freed and reused. Hence: an entry read
 * while the object lived is kept when the memory no longer holds a live
 * code object, and a dead object never read before is <unknown> rather than
 * decoded from freed memory. The capture session symbolizes each stack when
 * BPF announces it, while its code objects live (capture_stacks.c). Filenames are interned and
 * live until tm_symbolizer_free, as the API promises. */
#include "target/symbolize.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "target/layouts.h"
#include "target/linetable.h"
#include "tmbpf.h"

#define MAX_FILENAME_CHARS 4096
#define MAX_LINETABLE_BYTES (1u << 20)
#define CODE_HEADER_BYTES 0x100 /* covers every field we read, all versions */
/* ob_refcnt of a live object: at least 1, at most the 3.12+ immortal value
 * (UINT32_MAX). A freed block holds a free-list pointer there (pymalloc:
 * the pool's next free block or NULL; glibc: a tcache/bin pointer, safe-linked
 * or not), or glibc's tcache key in ob_type. */
#define MAX_LIVE_REFCNT 0xffffffffull

static const char unknown_filename[] = "<unknown>";

struct code_entry {
	uint64_t code;          /* key; 0 = empty slot */
	uint64_t check;         /* TM_CODE_CHECK of the object read (its identity) */
	uint64_t type, filename_ptr, lines_ptr;
	int32_t firstlineno;
	int32_t firsttraceable; /* 3.11+, in code units */
	uint64_t code_size;     /* <=3.10: co_code pointer; 3.11+: Py_SIZE (code units) */
	uint64_t code_bytes;    /* bytecode length: a position at or past it is not in this
				 * code object (its address was reused); 0 = unknown */
	int status;             /* 0 resolved, -ENOENT unreadable */
	uint32_t pass;          /* tm_symbolizer_begin_pass() generation it was checked in */
	const char *filename;   /* interned */
	const char *name;       /* interned co_qualname (3.11+) or co_name; NULL: unreadable */
	uint8_t *lines;         /* copy of the line table; NULL: unreadable (line 0) */
	size_t nlines;
	/* The last positions looked up: the same caller frames recur in
	 * thousands of stacks, and a 3.11+ location table is decoded from its
	 * start on every lookup (the start-up burst made the consumer fall
	 * seconds behind, and module code objects died unsymbolized). */
	int64_t memo_addr[4];
	int32_t memo_line[4];
	uint32_t memo_next;
};

struct str_node {
	struct str_node *next;
	uint64_t hash;
	char s[];
};

/* Memory BPF copied (a code object image): ranges of the target's address
 * space and their bytes, consulted before the target itself. */
struct image_region {
	uint64_t addr;
	uint32_t len;
	const uint8_t *bytes;
};

struct code_image {
	uint64_t code, check;      /* 0: empty slot */
	struct image_region region[4];
	uint8_t *data;             /* owns the bytes */
};

#define IMAGE_SLOTS 4096 /* pending images (a burst of new code objects at start-up) */

struct tm_symbolizer {
	pid_t pid;
	struct code_image *images; /* IMAGE_SLOTS, by code address; consumed when used */
	const struct code_image *reading; /* the image reads go through, NULL: memory */
	int minor;
	uint64_t code_type;
	uint64_t none_addr;
	struct tm_layout layout;  /* the target's (layouts.h), copied: t may go first */
	const struct tm_layout *l; /* &layout */
	struct code_entry *codes; /* open addressing, power of two */
	size_t ncodes, cap;
	struct str_node **strs;   /* chained, fixed size */
	size_t nstrbuckets;
	uint32_t pass;
};

/* Bytes of the target: from the image being used when it holds them, else
 * from memory. */
static int sym_read(struct tm_symbolizer *s, uint64_t addr, void *buf, size_t len)
{
	if (s->reading) {
		for (int i = 0; i < 4; i++) {
			const struct image_region *r = &s->reading->region[i];

			if (r->len && addr >= r->addr && addr + len <= r->addr + r->len) {
				memcpy(buf, r->bytes + (addr - r->addr), len);
				return 0;
			}
		}
	}
	return tm_target_read(s->pid, addr, buf, len);
}

static uint64_t hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static uint64_t hash_str(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
	return h;
}

static const char *intern(struct tm_symbolizer *s, const char *str, size_t n)
{
	uint64_t h = hash_str(str, n);
	struct str_node **b = &s->strs[h % s->nstrbuckets];

	for (struct str_node *p = *b; p; p = p->next)
		if (p->hash == h && !strncmp(p->s, str, n) && p->s[n] == '\0')
			return p->s;
	struct str_node *node = malloc(sizeof(*node) + n + 1);
	if (!node)
		return NULL;
	node->hash = h;
	memcpy(node->s, str, n);
	node->s[n] = '\0';
	node->next = *b;
	*b = node;
	return node->s;
}

struct tm_symbolizer *tm_symbolizer_new(const struct tm_target *t)
{
	struct tm_symbolizer *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->pid = t->pid;
	s->minor = t->minor;
	s->code_type = t->code_type_addr;
	s->none_addr = t->none_addr;
	s->layout = t->layout;
	s->l = t->layout.minor ? &s->layout : NULL;
	s->cap = 1024;
	s->codes = calloc(s->cap, sizeof(*s->codes));
	s->nstrbuckets = 1021;
	s->strs = calloc(s->nstrbuckets, sizeof(*s->strs));
	s->images = calloc(IMAGE_SLOTS, sizeof(*s->images));
	if (!s->l || !s->codes || !s->strs || !s->images) {
		int e = s->l ? ENOMEM : EPROTONOSUPPORT;

		tm_symbolizer_free(s);
		errno = e;
		return NULL;
	}
	return s;
}

static void release_entries(struct tm_symbolizer *s)
{
	for (size_t i = 0; i < s->cap; i++) {
		free(s->codes[i].lines);
		memset(&s->codes[i], 0, sizeof(s->codes[i]));
	}
	s->ncodes = 0;
}

void tm_symbolizer_free(struct tm_symbolizer *s)
{
	if (!s)
		return;
	if (s->codes)
		release_entries(s);
	free(s->codes);
	for (size_t i = 0; s->images && i < IMAGE_SLOTS; i++)
		free(s->images[i].data);
	free(s->images);
	for (size_t i = 0; s->strs && i < s->nstrbuckets; i++) {
		struct str_node *p = s->strs[i];

		while (p) {
			struct str_node *next = p->next;

			free(p);
			p = next;
		}
	}
	free(s->strs);
	free(s);
}

void tm_symbolizer_flush(struct tm_symbolizer *s)
{
	if (s)
		release_entries(s);
}

void tm_symbolizer_begin_pass(struct tm_symbolizer *s)
{
	if (s && ++s->pass == 0)
		s->pass = 1;
}

/* ---- reading strings ------------------------------------------------------ */

static size_t put_utf8(char *out, uint32_t cp)
{
	/* Surrogates (surrogateescape'd file names) are encoded as CPython's
	 * "surrogatepass" does, so a pickle reader gets the same str back. */
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Read a compact str object as UTF-8 and intern it. */
static int read_str(struct tm_symbolizer *s, uint64_t obj, const char **out)
{
	uint8_t hdr[TM_CODE_IMAGE_STR_MIN], *raw = NULL; /* BPF's images hold this much */
	char *utf8 = NULL;
	uint64_t length, type;
	uint32_t state, kind;
	int err;

	err = sym_read(s, obj, hdr, sizeof(hdr));
	if (err)
		return err;
	memcpy(&type, hdr + TM_PY_OB_TYPE, 8);
	memcpy(&length, hdr + TM_PY_STR_LENGTH, 8);
	memcpy(&state, hdr + TM_PY_STR_STATE, 4);
	kind = (state >> 2) & 7;
	if (!type || !(state & (1u << 5)) || length > MAX_FILENAME_CHARS)
		return -ENOENT; /* legacy (non-compact) or absurd string */
	uint64_t data = obj + ((state & (1u << 6)) ? s->l->ascii_data : s->l->compact_data);
	if (state & (1u << 6))
		kind = 1;
	if (kind != 1 && kind != 2 && kind != 4)
		return -ENOENT;
	raw = malloc(length * kind + 1);
	utf8 = malloc(length * 4 + 1);
	if (!raw || !utf8) {
		err = -ENOMEM;
		goto cleanup;
	}
	err = sym_read(s, data, raw, length * kind);
	if (err)
		goto cleanup;
	size_t n = 0;
	for (uint64_t i = 0; i < length; i++) {
		uint32_t cp;

		if (kind == 1)
			cp = raw[i];
		else if (kind == 2)
			cp = (uint32_t)raw[2 * i] | (uint32_t)raw[2 * i + 1] << 8;
		else
			memcpy(&cp, raw + 4 * i, 4);
		if (cp > 0x10ffff) {
			err = -ENOENT;
			goto cleanup;
		}
		n += put_utf8(utf8 + n, cp);
	}
	*out = intern(s, utf8, n);
	if (!*out)
		err = -ENOMEM;
cleanup:
	free(raw);
	free(utf8);
	return err;
}

/* ---- code objects ------------------------------------------------------------ */

struct code_fields {
	uint64_t refcnt, type, filename_ptr, lines_ptr, name_ptr;
	uint64_t code_size; /* <=3.10: co_code pointer; 3.11+: Py_SIZE(code), code units */
	int32_t firstlineno, firsttraceable;
};

static int refcnt_live(uint64_t refcnt)
{
	return refcnt >= 1 && refcnt <= MAX_LIVE_REFCNT;
}

/* The memory read at a code address holds a live code object. */
static int code_live(const struct tm_symbolizer *s, const struct code_fields *f)
{
	return refcnt_live(f->refcnt) && f->type == s->code_type && f->filename_ptr && f->lines_ptr;
}

static int read_code_fields(struct tm_symbolizer *s, uint64_t code, struct code_fields *f)
{
	const struct tm_layout *l = s->l;
	uint8_t hdr[CODE_HEADER_BYTES];
	int err = sym_read(s, code, hdr, sizeof(hdr));

	if (err)
		return err;
	memcpy(&f->refcnt, hdr, 8);
	memcpy(&f->type, hdr + TM_PY_OB_TYPE, 8);
	memcpy(&f->filename_ptr, hdr + l->co_filename, 8);
	memcpy(&f->lines_ptr, hdr + l->co_lines, 8);
	memcpy(&f->name_ptr, hdr + (l->co_qualname != TM_NO_OFFSET ? l->co_qualname : l->co_name),
	       8);
	memcpy(&f->firstlineno, hdr + l->co_firstlineno, 4);
	f->firsttraceable = 0;
	if (l->co_firsttraceable != TM_NO_OFFSET)
		memcpy(&f->firsttraceable, hdr + l->co_firsttraceable, 4);
	if (l->co_code != TM_NO_OFFSET)
		memcpy(&f->code_size, hdr + l->co_code, 8);
	else
		memcpy(&f->code_size, hdr + TM_PY_VAR_SIZE, 8);
	return 0;
}

/* Length in bytes of the code object's bytecode, or 0 when unknown. */
static uint64_t code_bytes(struct tm_symbolizer *s, const struct code_fields *f)
{
	uint64_t hdr[3]; /* co_code: ob_refcnt, ob_type, ob_size */

	if (s->l->co_code == TM_NO_OFFSET)
		return f->code_size * 2; /* 2-byte code units, inline */
	if (!f->code_size || sym_read(s, f->code_size, hdr, sizeof(hdr)) ||
	    !refcnt_live(hdr[0]))
		return 0;
	return hdr[TM_PY_BYTES_SIZE / 8];
}

static int read_lines(struct tm_symbolizer *s, uint64_t bytes_obj, uint8_t **tab, size_t *len)
{
	uint64_t hdr[3], size; /* ob_refcnt, ob_type, ob_size */
	int err = sym_read(s, bytes_obj, hdr, sizeof(hdr));

	if (err)
		return err;
	size = hdr[TM_PY_BYTES_SIZE / 8];
	if (!refcnt_live(hdr[0]))
		return -ENOENT; /* freed: the code object holding it is dying */
	if (size > MAX_LINETABLE_BYTES)
		return -E2BIG;
	*tab = malloc(size ? size : 1);
	if (!*tab)
		return -ENOMEM;
	err = sym_read(s, bytes_obj + TM_PY_BYTES_DATA, *tab, size);
	if (err) {
		free(*tab);
		*tab = NULL;
		return err;
	}
	*len = size;
	return 0;
}

static int fill_entry(struct tm_symbolizer *s, struct code_entry *e, uint64_t code,
		      const struct code_fields *f)
{
	free(e->lines);
	memset(e, 0, sizeof(*e));
	e->code = code;
	e->type = f->type;
	e->filename_ptr = f->filename_ptr;
	e->lines_ptr = f->lines_ptr;
	e->firstlineno = f->firstlineno;
	e->firsttraceable = f->firsttraceable;
	e->code_size = f->code_size;
	e->check = TM_CODE_CHECK(f->filename_ptr, (uint32_t)f->firstlineno);
	e->pass = s->pass;
	e->filename = unknown_filename;
	e->status = -ENOENT;
	for (int i = 0; i < 4; i++)
		e->memo_addr[i] = INT64_MIN;
	if (!code_live(s, f))
		return 0;
	if (read_str(s, f->filename_ptr, &e->filename)) {
		e->filename = unknown_filename;
		return 0;
	}
	/* The function's name is an annotation (pprof, flame graphs): without
	 * it the frame is still (filename, lineno). A code image does not hold
	 * it, so it is read from memory, where the name of an object that died
	 * before its stack was read may be gone. */
	if (!f->name_ptr || read_str(s, f->name_ptr, &e->name))
		e->name = NULL;
	e->code_bytes = code_bytes(s, f);
	/* An unreadable line table leaves the filename known and the line 0. */
	if (read_lines(s, f->lines_ptr, &e->lines, &e->nlines)) {
		e->lines = NULL;
		e->nlines = 0;
	}
	e->status = 0;
	return 0;
}

static int grow(struct tm_symbolizer *s)
{
	size_t ncap = s->cap * 2;
	struct code_entry *n = calloc(ncap, sizeof(*n));

	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->codes[i].code)
			continue;
		size_t j = hash64(s->codes[i].code) & (ncap - 1);
		while (n[j].code)
			j = (j + 1) & (ncap - 1);
		n[j] = s->codes[i];
	}
	free(s->codes);
	s->codes = n;
	s->cap = ncap;
	return 0;
}

static struct code_entry *slot_for(struct tm_symbolizer *s, uint64_t code)
{
	size_t i;

	if ((s->ncodes + 1) * 4 > s->cap * 3 && grow(s))
		return NULL;
	i = hash64(code) & (s->cap - 1);
	while (s->codes[i].code && s->codes[i].code != code)
		i = (i + 1) & (s->cap - 1);
	if (!s->codes[i].code)
		s->ncodes++;
	return &s->codes[i];
}

/* The cached entry for code, checked against (or read from) memory; with
 * recheck, checked even if this pass already did. */
static struct code_entry *lookup(struct tm_symbolizer *s, uint64_t code, int recheck)
{
	struct code_entry *e = slot_for(s, code);
	struct code_fields f;
	int err;

	if (!e)
		return NULL;
	if (!recheck && e->code == code && s->pass && e->pass == s->pass)
		return e;
	err = read_code_fields(s, code, &f);
	if (err) {
		/* Gone (process exited, memory unmapped): keep what we knew. */
		if (e->code == code)
			return e;
		e->code = code;
		e->filename = unknown_filename;
		e->status = -ENOENT;
		return e;
	}
	if (e->code == code && e->type == f.type && e->filename_ptr == f.filename_ptr &&
	    e->lines_ptr == f.lines_ptr && e->firstlineno == f.firstlineno &&
	    e->firsttraceable == f.firsttraceable && e->code_size == f.code_size) {
		/* Same object, or its corpse (fields intact, line table maybe
		 * reused): the copy taken when it was read stands either way. */
		e->pass = s->pass;
		return e;
	}
	if (e->code == code && e->status == 0 && !code_live(s, &f)) {
		/* The object we read has died and its memory is no code object
		 * now: stacks can only name it from when it lived. */
		e->pass = s->pass;
		return e;
	}
	fill_entry(s, e, code, &f);
	return e;
}

/* The frame's byte position in its code object. */
static int64_t frame_addr(const struct tm_symbolizer *s, uint64_t code, uint64_t lasti)
{
	const struct tm_layout *l = s->l;
	int64_t addr;

	if (l->frame_kind == TM_FRAMES_OBJECT) {
		addr = (int32_t)(uint32_t)lasti;
		if (l->lines_kind == TM_LINES_LINETABLE310 && addr >= 0)
			addr *= 2; /* f_lasti counts 2-byte code units in 3.10 */
	} else {
		addr = (int64_t)(lasti - (code + l->co_code_adaptive));
	}
	return addr;
}

/* The answer of entry e for position addr (tm_symbolize_frame's returns). */
static int entry_answer(struct tm_symbolizer *s, struct code_entry *e, int64_t addr,
			const char **filename, uint32_t *lineno, const char **name)
{
	const struct tm_layout *l = s->l;
	int line;

	if (!e || e->status)
		return -ENOENT; /* tracemalloc also shows <unknown> for a non-str filename */
	*filename = e->filename;
	if (name)
		*name = e->name;
	/* _PyFrame_IsIncomplete (3.11+): still in the prologue (before RESUME). */
	if (l->frame_kind == TM_FRAMES_INTERP && addr < 2 * (int64_t)e->firsttraceable)
		return 1;
	if (e->code_bytes && addr >= (int64_t)e->code_bytes) {
		/* Not a position in this code object: BPF saw another one at
		 * this address, freed since (tracemalloc would name that one). */
		*filename = unknown_filename;
		if (name)
			*name = NULL;
		return -ENOENT;
	}
	if (!e->lines)
		return 0; /* line table unreadable: the file is known, the line 0 */
	for (int i = 0; i < 4; i++) {
		if (e->memo_addr[i] == addr) {
			*lineno = (uint32_t)e->memo_line[i];
			return 0;
		}
	}
	line = tm_linetable_line(l->lines_kind, e->lines, e->nlines, e->firstlineno, addr);
	*lineno = line < 0 ? 0 : (uint32_t)line;
	e->memo_addr[e->memo_next & 3] = addr;
	e->memo_line[e->memo_next & 3] = (int32_t)*lineno;
	e->memo_next++;
	return 0;
}

int tm_symbolize_frame(struct tm_symbolizer *s, uint64_t code, uint64_t lasti,
		       const char **filename, uint32_t *lineno)
{
	return tm_symbolize_frame_named(s, code, lasti, filename, lineno, NULL);
}

int tm_symbolize_frame_named(struct tm_symbolizer *s, uint64_t code, uint64_t lasti,
			     const char **filename, uint32_t *lineno, const char **name)
{
	struct code_entry *e;
	int64_t addr;

	*filename = unknown_filename;
	*lineno = 0;
	if (name)
		*name = NULL;
	code &= ~(uint64_t)s->l->f_code_tags; /* 3.14+ _PyStackRef (BPF clears them too) */
	if (!code)
		return -ENOENT;
	if (s->none_addr && code == s->none_addr)
		return 1; /* 3.13+ shim or interpreter frame that BPF did not skip */
	addr = frame_addr(s, code, lasti);
	e = lookup(s, code, 0);
	/* Checked earlier in this pass, but the position does not fit: the
	 * object may have been replaced since (addresses are reused within
	 * milliseconds at start-up). Look again. */
	if (e && !e->status && e->code_bytes && addr >= (int64_t)e->code_bytes)
		e = lookup(s, code, 1);
	return entry_answer(s, e, addr, filename, lineno, name);
}

static struct code_image *image_slot(struct tm_symbolizer *s, uint64_t code)
{
	return &s->images[hash64(code) & (IMAGE_SLOTS - 1)];
}

int tm_symbolizer_add_image(struct tm_symbolizer *s, const void *image, size_t size)
{
	const struct tm_code_image *img = image;
	const size_t hdr = offsetof(struct tm_code_image, data);
	struct code_image *ci;
	size_t need, at = 0;

	if (size < hdr)
		return -EINVAL;
	/* head at 0, co_code's header in its fixed room, then str and lines */
	need = (size_t)TM_CODE_IMAGE_HEAD + TM_CODE_IMAGE_COBYTES + img->str_len + img->lines_len;
	if (need > size - hdr || !img->code || !img->check || img->head_len != TM_CODE_IMAGE_HEAD ||
	    img->cobytes_len > TM_CODE_IMAGE_COBYTES)
		return -EINVAL;
	ci = image_slot(s, img->code);
	free(ci->data); /* an image not used in time: memory is read instead */
	memset(ci, 0, sizeof(*ci));
	ci->data = malloc(need ? need : 1);
	if (!ci->data)
		return -ENOMEM;
	memcpy(ci->data, img->data, need);
	ci->code = img->code;
	ci->check = img->check;
	{
		const uint64_t addrs[4] = { img->code, img->cobytes_addr, img->str_addr, img->lines_addr };
		const uint32_t lens[4] = { img->head_len, img->cobytes_len, img->str_len, img->lines_len };
		const size_t room[4] = { TM_CODE_IMAGE_HEAD, TM_CODE_IMAGE_COBYTES, img->str_len,
					 img->lines_len };

		for (int i = 0; i < 4; i++) {
			ci->region[i] = (struct image_region){ addrs[i], lens[i], ci->data + at };
			at += room[i];
		}
	}
	return 0;
}

int tm_symbolize_frame_checked(struct tm_symbolizer *s, uint64_t code, uint64_t lasti,
			       uint64_t check, const char **filename, uint32_t *lineno,
			       const char **name)
{
	struct code_entry *e;
	struct code_image *ci;
	struct code_fields f;
	int64_t addr;

	if (!check)
		return tm_symbolize_frame_named(s, code, lasti, filename, lineno, name);
	*filename = unknown_filename;
	*lineno = 0;
	if (name)
		*name = NULL;
	code &= ~(uint64_t)s->l->f_code_tags;
	if (!code)
		return -ENOENT;
	if (s->none_addr && code == s->none_addr)
		return 1;
	addr = frame_addr(s, code, lasti);
	e = slot_for(s, code);
	if (!e)
		return -ENOMEM;
	if (e->code == code && e->check == check)
		return entry_answer(s, e, addr, filename, lineno, name); /* read with this identity */
	ci = image_slot(s, code);
	if (ci->code == code && ci->check == check) {
		/* BPF's copy from when the frame ran: the object may be gone */
		s->reading = ci;
		if (read_code_fields(s, code, &f) == 0)
			fill_entry(s, e, code, &f);
		s->reading = NULL;
		free(ci->data);
		memset(ci, 0, sizeof(*ci));
		return entry_answer(s, e, addr, filename, lineno, name);
	}
	if (read_code_fields(s, code, &f) ||
	    TM_CODE_CHECK(f.filename_ptr, (uint32_t)f.firstlineno) != check) {
		if (!e->code)
			s->ncodes--; /* slot_for counted the empty slot as taken */
		return -ENOENT; /* another object, or none, is there now */
	}
	if (!(e->code == code && e->type == f.type && e->filename_ptr == f.filename_ptr &&
	      e->lines_ptr == f.lines_ptr && e->firstlineno == f.firstlineno && e->status == 0))
		fill_entry(s, e, code, &f);
	return entry_answer(s, e, addr, filename, lineno, name);
}
