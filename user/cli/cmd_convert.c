/* tmbpf convert and tmbpf info.
 * convert loads any snapshot file (native or tracemalloc pickle, sniffed from
 * the content) and writes it atomically in the format named by --format, else
 * by OUT's extension (.pickle/.pkl, .json, anything else native).
 * info prints what a file holds: format, counts, per-domain totals and the
 * capture metadata. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "core/snapshot_io.h"

struct convert_ctx {
	enum tm_file_format format;
};

static const struct cli_option convert_options[] = {
	{ "format", KEY_FORMAT, "pickle|native|json",
	  "output format (default: OUT's extension: .pickle/.pkl, .json, else native)" },
	{ NULL, 0, NULL, NULL },
};

static int convert_set(void *dst, const struct cli_option *opt, const char *v, const char *prog)
{
	struct convert_ctx *c = dst;

	(void)opt;
	if (tm_format_parse(v, &c->format)) {
		fprintf(stderr, "%s: unknown format '%s' (pickle, native or json)\n", prog, v);
		return -1;
	}
	return 0;
}

static const struct cli_table convert_tables[] = {
	{ "Options", convert_options, convert_set, 0 },
};

static int run_convert(const struct cli_command *cmd, int argc, char **argv)
{
	struct convert_ctx c = { TM_FORMAT_AUTO };
	struct tm_snapshot *snap = NULL;
	const char *in, *out;
	char err[512];
	int i = cli_parse(cmd, &c, argc, argv), rc = 1;

	if (i < 0)
		return i == CLI_HELP ? 0 : 2;
	in = argv[i];
	out = argv[i + 1];
	if (c.format == TM_FORMAT_AUTO)
		c.format = tm_format_from_path(out);
	snap = tm_snapshot_load(in, err, sizeof(err));
	if (!snap) {
		fprintf(stderr, "tmbpf: %s: %s\n", in, err);
		goto cleanup;
	}
	if (tm_snapshot_save(snap, out, c.format, err, sizeof(err))) {
		fprintf(stderr, "tmbpf: %s: %s\n", out, err);
		goto cleanup;
	}
	fprintf(stderr, "tmbpf: wrote %zu traces to %s (%s)\n", snap->ntraces, out,
		tm_format_name(c.format));
	rc = 0;
cleanup:
	tm_snapshot_free(snap);
	return rc;
}

struct domain_total {
	uint32_t domain;
	uint64_t count;
	unsigned __int128 size; /* 2^32 blocks of 2^64-1 bytes still fit */
};

#define LINEAR_DOMAINS 64

static void format_u128(char *buf, size_t len, unsigned __int128 v)
{
	char tmp[48];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v && n < sizeof(tmp));
	if (n >= len)
		n = len - 1;
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
}

static int cmp_domain(const void *a, const void *b)
{
	uint32_t x = ((const struct domain_total *)a)->domain;
	uint32_t y = ((const struct domain_total *)b)->domain;

	return x < y ? -1 : x > y;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Many domains (only hostile or synthetic files): sort the traces' domains. */
static struct domain_total *domain_totals_sorted(const struct tm_snapshot *snap, size_t *n)
{
	struct { uint32_t domain; uint64_t size; } *v;
	struct domain_total *out;
	size_t k = 0;

	v = malloc(snap->ntraces * sizeof(*v));
	out = malloc(snap->ntraces * sizeof(*out));
	if (!v || !out) {
		free(v);
		free(out);
		return NULL;
	}
	for (size_t i = 0; i < snap->ntraces; i++) {
		v[i].domain = snap->traces[i].domain;
		v[i].size = snap->traces[i].size_bytes;
	}
	qsort(v, snap->ntraces, sizeof(*v), cmp_u32);
	for (size_t i = 0; i < snap->ntraces; i++) {
		if (!k || out[k - 1].domain != v[i].domain)
			out[k++] = (struct domain_total){ v[i].domain, 0, 0 };
		out[k - 1].count++;
		out[k - 1].size += v[i].size;
	}
	free(v);
	*n = k;
	return out;
}

/* Per-domain totals, sorted by domain. Snapshots have a handful of domains:
 * the last one used is checked first, then a linear search. */
static struct domain_total *domain_totals(const struct tm_snapshot *snap, size_t *n)
{
	struct domain_total *out = NULL;
	size_t k = 0, cap = 0, last = 0;

	for (size_t i = 0; i < snap->ntraces; i++) {
		uint32_t d = snap->traces[i].domain;
		size_t j = last;

		if (j >= k || out[j].domain != d) {
			for (j = 0; j < k && out[j].domain != d; j++)
				;
		}
		if (j == k && k == LINEAR_DOMAINS) {
			free(out);
			return domain_totals_sorted(snap, n);
		}
		if (j == k) {
			if (k == cap) {
				struct domain_total *nw;

				cap = cap ? cap * 2 : 8;
				nw = realloc(out, cap * sizeof(*out));
				if (!nw) {
					free(out);
					return NULL;
				}
				out = nw;
			}
			out[k++] = (struct domain_total){ d, 0, 0 };
		}
		out[j].count++;
		out[j].size += snap->traces[i].size_bytes;
		last = j;
	}
	if (!out)
		out = malloc(sizeof(*out));
	if (out)
		qsort(out, k, sizeof(*out), cmp_domain);
	*n = k;
	return out;
}

static void print_time(const char *label, uint64_t ns)
{
	char buf[64];
	struct tm tm;
	time_t s = (time_t)(ns / 1000000000u);

	if (!ns) {
		printf("%-18s unknown\n", label);
		return;
	}
	if (!gmtime_r(&s, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm))
		snprintf(buf, sizeof(buf), "?");
	printf("%-18s %s.%09" PRIu64 "Z (%" PRIu64 " ns)\n", label, buf, ns % 1000000000u, ns);
}

static void print_str(const char *label, const char *v)
{
	printf("%-18s %s\n", label, v ? v : "unknown");
}

static void print_meta(const struct tm_snapshot_meta *m, const struct tm_snapshot *snap)
{
	size_t with_tid = 0, with_time = 0;

	for (size_t i = 0; i < snap->ntraces; i++) {
		with_tid += snap->traces[i].thread_id != 0;
		with_time += snap->traces[i].alloc_ns != 0;
	}
	if (m->pid >= 0)
		printf("%-18s %" PRId64 "\n", "pid:", m->pid);
	else
		print_str("pid:", NULL);
	print_str("cmdline:", m->cmdline);
	print_str("python:", m->python_version);
	print_str("host:", m->hostname);
	print_str("coverage:", m->coverage_mode);
	print_time("tracing started:", m->start_ns);
	print_time("snapshot taken:", m->snapshot_ns);
	if (m->has_traced_memory)
		printf("%-18s current %" PRIu64 " B, peak %" PRIu64 " B\n", "traced memory:",
		       m->traced_current_bytes, m->traced_peak_bytes);
	else
		print_str("traced memory:", NULL);
	if (!m->ndrops)
		printf("%-18s none recorded\n", "drops:");
	for (uint32_t i = 0; i < m->ndrops && i < TM_MAX_DROP_COUNTERS; i++)
		printf("%-18s %s=%" PRIu64 "\n", i ? "" : "drops:", m->drops[i].name,
		       m->drops[i].count);
	printf("%-18s %zu of %zu traces\n", "thread ids:", with_tid, snap->ntraces);
	printf("%-18s %zu of %zu traces\n", "allocation times:", with_time, snap->ntraces);
}

static int run_info(const struct cli_command *cmd, int argc, char **argv)
{
	struct tm_load_info info;
	struct tm_snapshot *snap;
	struct domain_total *dt;
	unsigned __int128 total = 0;
	char err[512], num[48];
	size_t ndt;

	const char *path;
	int i = cli_parse(cmd, NULL, argc, argv);

	if (i < 0)
		return i == CLI_HELP ? 0 : 2;
	path = argv[i];
	snap = tm_snapshot_load_ex(path, &info, err, sizeof(err));
	if (!snap) {
		fprintf(stderr, "tmbpf: %s: %s\n", path, err);
		return 1;
	}
	dt = domain_totals(snap, &ndt);
	if (!dt) {
		fprintf(stderr, "tmbpf: %s: out of memory\n", path);
		tm_snapshot_free(snap);
		return 1;
	}
	for (size_t i = 0; i < ndt; i++)
		total += dt[i].size;
	printf("%-18s %s\n", "file:", path);
	printf("%-18s %s (%s %u)\n", "format:", tm_format_name(info.format),
	       info.format == TM_FORMAT_PICKLE ? "protocol" : "version", info.version);
	printf("%-18s %" PRIu64 "\n", "file bytes:", info.file_bytes);
	printf("%-18s %zu\n", "traces:", snap->ntraces);
	printf("%-18s %zu\n", "tracebacks:", tm_snapshot_ntracebacks(snap));
	printf("%-18s %u\n", "traceback_limit:", snap->traceback_limit);
	format_u128(num, sizeof(num), total);
	printf("%-18s %s B\n", "total size:", num);
	if (!ndt)
		printf("%-18s none\n", "domains:");
	for (size_t i = 0; i < ndt; i++) {
		format_u128(num, sizeof(num), dt[i].size);
		printf("%-18s domain %" PRIu32 ": %" PRIu64 " traces, %s B\n",
		       i ? "" : "domains:", dt[i].domain, dt[i].count, num);
	}
	print_meta(&snap->meta, snap);
	free(dt);
	tm_snapshot_free(snap);
	return 0;
}

const struct cli_command cmd_convert = {
	.name = "convert",
	.usage = "convert IN OUT [--format pickle|native|json]",
	.summary = "Convert a snapshot file (native or tracemalloc pickle, told apart by content).",
	.run = run_convert,
	.tables = convert_tables,
	.ntables = 1,
	.operands_min = 2,
	.operands_max = 2,
};

const struct cli_command cmd_info = {
	.name = "info",
	.usage = "info FILE",
	.summary = "What a snapshot file holds: format, counts, domains and capture metadata.",
	.run = run_info,
	.operands_min = 1,
	.operands_max = 1,
};
