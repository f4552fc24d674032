/* tmbpf convert IN OUT [--format pickle|native|json]
 * tmbpf info FILE
 *
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

static void convert_usage(FILE *out)
{
	fprintf(out, "usage: tmbpf convert IN OUT [--format pickle|native|json]\n"
		     "Convert a snapshot file. The format defaults to OUT's extension:\n"
		     ".pickle/.pkl -> tracemalloc pickle, .json -> JSON, otherwise native.\n");
}

static void info_usage(FILE *out)
{
	fprintf(out, "usage: tmbpf info FILE\n"
		     "Describe a snapshot file (native or tracemalloc pickle).\n");
}

int cmd_convert(int argc, char **argv)
{
	enum tm_file_format fmt = TM_FORMAT_AUTO;
	const char *pos[2] = { NULL, NULL };
	struct tm_snapshot *snap = NULL;
	char err[512];
	int npos = 0, rc = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			convert_usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--format") || !strcmp(a, "-f")) {
			if (++i == argc) {
				fprintf(stderr, "tmbpf: convert: %s needs a value (pickle, native or json)\n", a);
				return 2;
			}
			val = argv[i];
		} else if (!strncmp(a, "--format=", 9)) {
			val = a + 9;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "tmbpf: convert: unknown option '%s'\n", a);
			convert_usage(stderr);
			return 2;
		} else if (npos < 2) {
			pos[npos++] = a;
			continue;
		} else {
			fprintf(stderr, "tmbpf: convert: too many arguments\n");
			convert_usage(stderr);
			return 2;
		}
		if (tm_format_parse(val, &fmt)) {
			fprintf(stderr, "tmbpf: convert: unknown format '%s' (pickle, native or json)\n", val);
			return 2;
		}
	}
	if (npos != 2) {
		convert_usage(stderr);
		return 2;
	}
	if (fmt == TM_FORMAT_AUTO)
		fmt = tm_format_from_path(pos[1]);
	snap = tm_snapshot_load(pos[0], err, sizeof(err));
	if (!snap) {
		fprintf(stderr, "tmbpf: %s: %s\n", pos[0], err);
		goto cleanup;
	}
	if (tm_snapshot_save(snap, pos[1], fmt, err, sizeof(err))) {
		fprintf(stderr, "tmbpf: %s: %s\n", pos[1], err);
		goto cleanup;
	}
	fprintf(stderr, "tmbpf: wrote %zu traces to %s (%s)\n", snap->ntraces, pos[1],
		tm_format_name(fmt));
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

int cmd_info(int argc, char **argv)
{
	struct tm_load_info info;
	struct tm_snapshot *snap;
	struct domain_total *dt;
	unsigned __int128 total = 0;
	char err[512], num[48];
	size_t ndt;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		info_usage(stdout);
		return 0;
	}
	if (argc != 2 || (argv[1][0] == '-' && argv[1][1])) {
		info_usage(stderr);
		return 2;
	}
	snap = tm_snapshot_load_ex(argv[1], &info, err, sizeof(err));
	if (!snap) {
		fprintf(stderr, "tmbpf: %s: %s\n", argv[1], err);
		return 1;
	}
	dt = domain_totals(snap, &ndt);
	if (!dt) {
		fprintf(stderr, "tmbpf: %s: out of memory\n", argv[1]);
		tm_snapshot_free(snap);
		return 1;
	}
	for (size_t i = 0; i < ndt; i++)
		total += dt[i].size;
	printf("%-18s %s\n", "file:", argv[1]);
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
