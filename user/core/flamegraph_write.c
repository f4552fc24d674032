/* Flame graph page: flamegraph.html (the page, compiled in) with the
 * snapshot's traceback tree as JSON in place of its TMBPF_DATA line.
 *
 * The tree is the tracebacks merged from their oldest frame, each node
 * weighted by the live bytes and blocks under it. A page must stay readable
 * and load fast at 10^5 distinct tracebacks (10^6 nodes and more): only the
 * MAX_NODES heaviest nodes are written (a node weighs at most its parent, so
 * what is kept stays a tree), and the children dropped under a node become
 * one "[N smaller frames]" node of their summed weight. The table of
 * allocation sites is computed from every trace, before that cut. */
#include "core/profile.h"
#include "core/snapshot_io.h"
#include "core/snapshot_io_internal.h"
#include "core/text_encoding.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_NODES 100000u
#define MAX_SITES 20

/* The page, from the source tree (the Makefile makes this object depend on
 * it): no separate file to install or find at run time. */
__asm__(".section .rodata\n"
	".global tm_flamegraph_page\n"
	"tm_flamegraph_page:\n"
	".incbin \"user/core/flamegraph.html\"\n"
	".byte 0\n"
	".previous\n");
extern const char tm_flamegraph_page[];

struct node {
	uint32_t parent, label;   /* label: index into labels */
	uint32_t first, next;     /* children, siblings (0: none; the root is 0) */
	uint32_t out;             /* index in the page, UINT32_MAX: dropped */
	uint64_t size, count;
};

struct tree {
	struct node *nodes;
	size_t n, cap;
	uint32_t *slots; size_t nslots; /* (parent, label) -> node, open addressing */
	struct tm_ptrmap labelmap;      /* (name or filename, lineno, file) -> label */
	struct tm_ptrmap filemap;       /* filename -> small id */
	size_t nfiles;
	const struct tm_frame **labels; size_t nlabels, labels_cap;
};

/* A label per (filename, lineno, name): unlike a frame's identity, the
 * name counts here (a 3.11 comprehension and its function share a line). */
static int label_of(struct tree *t, const struct tm_frame *f, uint32_t *id)
{
	struct tm_ptrmap_slot *s = tm_ptrmap_lookup(&t->filemap, f->filename, 0);
	uint64_t tag;

	if (!s)
		return -ENOMEM;
	if (!s->ptr) {
		*s = (struct tm_ptrmap_slot){ f->filename, 0, (uint32_t)t->nfiles++ };
		t->filemap.count++;
	}
	tag = (uint64_t)f->lineno | (uint64_t)s->value << 32 | (f->name ? 0 : 1ull << 63);
	s = tm_ptrmap_lookup(&t->labelmap, f->name ? f->name : f->filename, tag);
	if (!s)
		return -ENOMEM;
	if (!s->ptr) {
		if (t->nlabels == t->labels_cap) {
			size_t ncap = t->labels_cap ? 2 * t->labels_cap : 1024;
			const struct tm_frame **nl = realloc(t->labels, ncap * sizeof(*nl));

			if (!nl)
				return -ENOMEM;
			t->labels = nl;
			t->labels_cap = ncap;
		}
		*s = (struct tm_ptrmap_slot){ f->name ? f->name : f->filename, tag,
					      (uint32_t)t->nlabels };
		t->labelmap.count++;
		t->labels[t->nlabels++] = f;
	}
	*id = s->value;
	return 0;
}

static size_t slot_hash(uint32_t parent, uint32_t label)
{
	uint64_t h = ((uint64_t)parent << 32 | label) * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h ^ (h >> 31));
}

static int grow_slots(struct tree *t)
{
	size_t ncap = t->nslots ? 2 * t->nslots : 1 << 14;
	uint32_t *n = calloc(ncap, sizeof(*n));

	if (!n)
		return -ENOMEM;
	for (size_t i = 1; i < t->n; i++) {
		size_t j = slot_hash(t->nodes[i].parent, t->nodes[i].label) & (ncap - 1);

		while (n[j])
			j = (j + 1) & (ncap - 1);
		n[j] = (uint32_t)i;
	}
	free(t->slots);
	t->slots = n;
	t->nslots = ncap;
	return 0;
}

/* The child of parent with label, created when missing. */
static int child(struct tree *t, uint32_t parent, uint32_t label, uint32_t *out)
{
	size_t j;

	if ((t->n + 1) * 2 > t->nslots && grow_slots(t))
		return -ENOMEM;
	for (j = slot_hash(parent, label) & (t->nslots - 1); t->slots[j]; j = (j + 1) & (t->nslots - 1)) {
		const struct node *x = &t->nodes[t->slots[j]];

		if (x->parent == parent && x->label == label) {
			*out = t->slots[j];
			return 0;
		}
	}
	if (t->n == t->cap) {
		size_t ncap = 2 * t->cap;
		struct node *nn;

		if (ncap > UINT32_MAX - 1)
			return -EOVERFLOW;
		nn = realloc(t->nodes, ncap * sizeof(*nn));
		if (!nn)
			return -ENOMEM;
		t->nodes = nn;
		t->cap = ncap;
	}
	t->nodes[t->n] = (struct node){ parent, label, 0, t->nodes[parent].first, 0, 0, 0 };
	t->nodes[parent].first = (uint32_t)t->n;
	t->slots[j] = (uint32_t)t->n;
	*out = (uint32_t)t->n++;
	return 0;
}

static int build_tree(struct tree *t, const struct tm_snapshot *snap, const struct tm_tb_total *tot)
{
	t->cap = 1024;
	t->nodes = calloc(t->cap, sizeof(*t->nodes));
	if (!t->nodes)
		return -ENOMEM;
	t->n = 1; /* the root */
	for (size_t i = 0; i < tm_snapshot_ntracebacks(snap); i++) {
		const struct tm_traceback *tb = tm_snapshot_traceback_at(snap, i);
		uint32_t at = 0, label;
		int err;

		if (!tot[i].count)
			continue;
		t->nodes[0].size += tot[i].size_bytes;
		t->nodes[0].count += tot[i].count;
		for (uint32_t k = tb->nframe; k-- > 0;) {
			if ((err = label_of(t, &tb->frames[k], &label)) || (err = child(t, at, label, &at)))
				return err;
			t->nodes[at].size += tot[i].size_bytes;
			t->nodes[at].count += tot[i].count;
		}
	}
	return 0;
}

static int cmp_u64_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* Nodes heavier than the (MAX_NODES+1)-th heaviest are kept: a node weighs
 * no more than its parent, so the kept set is closed under parents. */
static int cut_threshold(const struct tree *t, uint64_t *min_keep)
{
	uint64_t *v;

	*min_keep = 0;
	if (t->n <= MAX_NODES)
		return 0;
	v = malloc(t->n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++)
		v[i] = t->nodes[i].size;
	qsort(v, t->n, sizeof(*v), cmp_u64_desc);
	*min_keep = v[MAX_NODES] + 1;
	free(v);
	return 0;
}

static int cmp_child(const void *a, const void *b, void *nodes)
{
	const struct node *n = nodes;
	uint64_t x = n[*(const uint32_t *)a].size, y = n[*(const uint32_t *)b].size;

	if (x != y)
		return x < y ? 1 : -1;
	return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

struct page {
	struct tm_out *o;
	size_t written;     /* nodes written so far */
	uint64_t *small;    /* the k-th "[N smaller frames]" node: N */
	size_t nsmall;
	uint64_t pruned;    /* frames dropped into them */
};

static void put(struct tm_out *o, const char *s)
{
	tm_out_write(o, s, strlen(s));
}

/* A JSON string inside <script>: '<' escaped so "</script>" cannot end it. */
static int put_json_str(struct tm_out *o, const char *s)
{
	char *q = tm_json_quote(s);

	if (!q)
		return -ENOMEM;
	for (const char *p = q; *p; p++) {
		if (*p == '<')
			put(o, "\\u003c");
		else
			tm_out_byte(o, (unsigned char)*p);
	}
	free(q);
	return o->err;
}

static void put_node(struct page *pg, int64_t parent, int64_t label, uint64_t size,
		     uint64_t count)
{
	char b[96];

	snprintf(b, sizeof(b), "%s%" PRId64 ",%" PRId64 ",%" PRIu64 ",%" PRIu64,
		 pg->written ? "," : "", parent, label, size, count);
	put(pg->o, b);
	pg->written++;
}

/* The dropped children of node i as one node, after its kept children. */
static void put_small(struct page *pg, const struct tree *t, uint32_t i, uint64_t min_keep)
{
	uint64_t size = 0, count = 0, n = 0;

	for (uint32_t c = t->nodes[i].first; c; c = t->nodes[c].next) {
		if (t->nodes[c].size < min_keep) {
			size += t->nodes[c].size;
			count += t->nodes[c].count;
			n++;
		}
	}
	if (!n)
		return;
	put_node(pg, t->nodes[i].out, (int64_t)(t->nlabels + pg->nsmall), size, count);
	pg->small[pg->nsmall++] = n;
	pg->pruned += n;
}

/* Preorder, children heaviest first. A stack entry i >= t->n stands for
 * "the small node of i - t->n", pushed below i's children. */
static int put_nodes(struct page *pg, struct tree *t, uint64_t min_keep)
{
	uint32_t *stack = malloc(2 * t->n * sizeof(*stack)), *kids = malloc(t->n * sizeof(*kids));
	size_t sp = 0;

	pg->small = malloc(t->n * sizeof(*pg->small));
	if (!stack || !kids || !pg->small) {
		free(stack);
		free(kids);
		return -ENOMEM;
	}
	stack[sp++] = 0;
	while (sp) {
		uint32_t i = stack[--sp], nk = 0;
		struct node *x;

		if (i >= t->n) {
			put_small(pg, t, i - (uint32_t)t->n, min_keep);
			continue;
		}
		x = &t->nodes[i];
		x->out = (uint32_t)pg->written;
		/* The root has no label: the page names it "all". */
		put_node(pg, i ? (int64_t)t->nodes[x->parent].out : -1, i ? (int64_t)x->label : -1,
			 x->size, x->count);
		for (uint32_t c = x->first; c; c = t->nodes[c].next)
			if (t->nodes[c].size >= min_keep)
				kids[nk++] = c;
		stack[sp++] = i + (uint32_t)t->n;
		qsort_r(kids, nk, sizeof(*kids), cmp_child, t->nodes);
		/* Pushed in reverse so the heaviest comes out first. */
		for (uint32_t k = nk; k-- > 0;)
			stack[sp++] = kids[k];
	}
	free(stack);
	free(kids);
	return pg->o->err;
}

/* Frame labels, then the small nodes' names (labels nlabels + k). */
static int put_names(struct page *pg, const struct tree *t)
{
	struct tm_strbuf sb;
	int err = 0;

	tm_strbuf_init(&sb);
	put(pg->o, "],\n\"names\":[");
	for (size_t i = 0; i < t->nlabels && !err; i++) {
		tm_strbuf_reset(&sb);
		err = tm_frame_label(&sb, t->labels[i]);
		if (!err) {
			if (i)
				put(pg->o, ",");
			err = put_json_str(pg->o, tm_strbuf_str(&sb));
		}
	}
	for (size_t k = 0; k < pg->nsmall && !err; k++) {
		char b[64];

		snprintf(b, sizeof(b), "%s\"[%" PRIu64 " smaller frames]\"", t->nlabels + k ? "," : "",
			 pg->small[k]);
		put(pg->o, b);
	}
	tm_strbuf_release(&sb);
	return err ? err : pg->o->err;
}

static int cmp_site(const void *a, const void *b, void *sizes)
{
	const struct tm_tb_total *s = sizes;
	uint64_t x = s[*(const uint32_t *)a].size_bytes, y = s[*(const uint32_t *)b].size_bytes;

	if (x != y)
		return x < y ? 1 : -1;
	return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

/* Allocation sites: the most recent frame's label, summed over every trace
 * (Snapshot.statistics('lineno') order: size, then first seen). */
static int put_sites(struct page *pg, struct tree *t, const struct tm_snapshot *snap,
		     const struct tm_tb_total *tot)
{
	struct tm_tb_total *site = calloc(t->nlabels ? t->nlabels : 1, sizeof(*site));
	uint32_t *order = malloc((t->nlabels ? t->nlabels : 1) * sizeof(*order)), label, n = 0;
	struct tm_strbuf sb;
	int err = 0;

	tm_strbuf_init(&sb);
	if (!site || !order) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < tm_snapshot_ntracebacks(snap) && !err; i++) {
		if (!tot[i].count)
			continue;
		err = label_of(t, &tm_snapshot_traceback_at(snap, i)->frames[0], &label);
		if (!err) {
			if (!site[label].count)
				order[n++] = label;
			site[label].size_bytes += tot[i].size_bytes;
			site[label].count += tot[i].count;
		}
	}
	qsort_r(order, n, sizeof(*order), cmp_site, site);
	put(pg->o, "],\n\"sites\":[");
	for (uint32_t k = 0; k < n && k < MAX_SITES && !err; k++) {
		char b[64];

		tm_strbuf_reset(&sb);
		err = tm_frame_label(&sb, t->labels[order[k]]);
		put(pg->o, k ? ",[" : "[");
		err = err ? err : put_json_str(pg->o, tm_strbuf_str(&sb));
		snprintf(b, sizeof(b), ",%" PRIu64 ",%" PRIu64 "]", site[order[k]].size_bytes,
			 site[order[k]].count);
		put(pg->o, b);
	}
cleanup:
	tm_strbuf_release(&sb);
	free(site);
	free(order);
	return err ? err : pg->o->err;
}

static int put_header(struct tm_out *o, const struct tm_snapshot *snap, const struct tree *t)
{
	const struct tm_snapshot_meta *m = &snap->meta;
	char b[160], when[64] = "";
	struct tm_strbuf title;
	int err;

	tm_strbuf_init(&title);
	if (m->pid >= 0)
		err = tm_strbuf_appendf(&title, "PID %lld: %s", (long long)m->pid,
					m->cmdline ? m->cmdline : "?");
	else
		err = tm_strbuf_appends(&title, m->cmdline ? m->cmdline : "tmbpf snapshot");
	if (m->snapshot_ns) {
		time_t s = (time_t)(m->snapshot_ns / 1000000000u);
		struct tm tm;

		if (gmtime_r(&s, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	}
	snprintf(b, sizeof(b), "{\"total\":%" PRIu64 ",\"count\":%" PRIu64 ",\"title\":",
		 t->nodes[0].size, t->nodes[0].count);
	put(o, b);
	err = err ? err : put_json_str(o, tm_strbuf_str(&title));
	put(o, ",\"snapshot_time\":");
	err = err ? err : put_json_str(o, when);
	tm_strbuf_release(&title);
	return err ? err : o->err;
}

int tm_flamegraph_write(const struct tm_snapshot *snap, FILE *fp, char *err, size_t errlen)
{
	const char *mark = strstr(tm_flamegraph_page, "\nTMBPF_DATA\n");
	struct tm_tb_total *tot = NULL, sum;
	struct tree t = { 0 };
	struct page pg = { 0 };
	struct tm_out o;
	uint64_t min_keep;
	char b[96];
	int ret;

	ret = tm_out_init(&o, fp, 1 << 16);
	pg.o = &o;
	if (!ret && !mark)
		ret = -EINVAL; /* a broken build: the template lost its data line */
	ret = ret ? ret : tm_traceback_totals(snap, &tot, &sum);
	ret = ret ? ret : build_tree(&t, snap, tot);
	ret = ret ? ret : cut_threshold(&t, &min_keep);
	if (ret)
		goto cleanup;
	tm_out_write(&o, tm_flamegraph_page, (size_t)(mark - tm_flamegraph_page) + 1);
	ret = put_header(&o, snap, &t);
	put(&o, ",\n\"nodes\":[");
	ret = ret ? ret : put_nodes(&pg, &t, min_keep);
	ret = ret ? ret : put_sites(&pg, &t, snap, tot);
	ret = ret ? ret : put_names(&pg, &t);
	snprintf(b, sizeof(b), "],\n\"pruned\":%" PRIu64 "}", pg.pruned);
	put(&o, b);
	put(&o, mark + strlen("\nTMBPF_DATA"));
	ret = ret ? ret : tm_out_flush(&o);
cleanup:
	if (ret == -EOVERFLOW)
		tm_io_errf(err, errlen, "cannot write the flame graph: sizes add up to more than 2^64");
	else if (ret)
		tm_io_errf(err, errlen, "cannot write the flame graph: %s", strerror(-ret));
	tm_ptrmap_release(&t.labelmap);
	tm_ptrmap_release(&t.filemap);
	free(t.labels);
	free(t.nodes);
	free(t.slots);
	free(pg.small);
	free(tot);
	tm_out_release(&o);
	return ret;
}
