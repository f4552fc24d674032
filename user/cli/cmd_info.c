/* tmbpf info FILE: what a snapshot file holds (format, counts, per-domain
 * totals, the capture metadata), as text or JSON. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "core/age.h"
#include "core/snapshot_io.h"
#include "core/text_encoding.h"

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
	if (m->sample_interval_bytes)
		printf("%-18s every %" PRIu64 " bytes on average (statistics are estimates)\n",
		       "sampled:", m->sample_interval_bytes);
	else
		printf("%-18s no (every allocation traced)\n", "sampled:");
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

static void json_str(const char *key, const char *v, const char *sep)
{
	char *q = v ? tm_json_quote(v) : NULL;

	printf("%s\"%s\": %s", sep, key, q ? q : "null");
	free(q);
}

static void print_json(const char *path, const struct tm_load_info *info,
		       const struct tm_snapshot *snap, const struct domain_total *dt, size_t ndt,
		       unsigned __int128 total)
{
	const struct tm_snapshot_meta *m = &snap->meta;
	size_t with_tid = 0;
	char num[48];

	for (size_t i = 0; i < snap->ntraces; i++)
		with_tid += snap->traces[i].thread_id != 0;
	json_str("file", path, "{");
	printf(", \"format\": \"%s\", \"version\": %u, \"file_bytes\": %" PRIu64,
	       tm_format_name(info->format), info->version, info->file_bytes);
	printf(", \"traces\": %zu, \"tracebacks\": %zu, \"traceback_limit\": %u", snap->ntraces,
	       tm_snapshot_ntracebacks(snap), snap->traceback_limit);
	format_u128(num, sizeof(num), total);
	printf(", \"total_size\": %s, \"domains\": [", num);
	for (size_t i = 0; i < ndt; i++) {
		format_u128(num, sizeof(num), dt[i].size);
		printf("%s{\"domain\": %" PRIu32 ", \"traces\": %" PRIu64 ", \"size\": %s}",
		       i ? ", " : "", dt[i].domain, dt[i].count, num);
	}
	printf("], \"meta\": {");
	if (m->pid >= 0)
		printf("\"pid\": %" PRId64, m->pid);
	else
		printf("\"pid\": null");
	json_str("cmdline", m->cmdline, ", ");
	json_str("python_version", m->python_version, ", ");
	json_str("hostname", m->hostname, ", ");
	json_str("coverage_mode", m->coverage_mode, ", ");
	printf(", \"sample_interval_bytes\": %" PRIu64, m->sample_interval_bytes);
	printf(", \"start_ns\": %" PRIu64 ", \"snapshot_ns\": %" PRIu64, m->start_ns, m->snapshot_ns);
	if (m->has_traced_memory)
		printf(", \"traced_current_bytes\": %" PRIu64 ", \"traced_peak_bytes\": %" PRIu64,
		       m->traced_current_bytes, m->traced_peak_bytes);
	else
		printf(", \"traced_current_bytes\": null, \"traced_peak_bytes\": null");
	printf(", \"drops\": {");
	for (uint32_t i = 0; i < m->ndrops && i < TM_MAX_DROP_COUNTERS; i++) {
		char *q = tm_json_quote(m->drops[i].name);

		printf("%s%s: %" PRIu64, i ? ", " : "", q ? q : "\"?\"", m->drops[i].count);
		free(q);
	}
	printf("}}, \"traces_with_thread_id\": %zu, \"traces_with_time\": %zu}\n", with_tid,
	       tm_snapshot_ntimed(snap));
}

static int info_set(void *dst, const struct cli_option *opt, const char *v, const char *prog)
{
	(void)opt, (void)v, (void)prog;
	*(int *)dst = 1;
	return 0;
}

static const struct cli_option info_options[] = {
	{ "json", KEY_JSON, NULL, "JSON instead of text" },
	{ NULL, 0, NULL, NULL },
};

static const struct cli_table info_tables[] = {
	{ "Options", info_options, info_set, 0 },
};

static int run_info(const struct cli_command *cmd, int argc, char **argv)
{
	struct tm_load_info info;
	struct tm_snapshot *snap;
	struct domain_total *dt;
	unsigned __int128 total = 0;
	char err[512], num[48];
	const char *path;
	size_t ndt;
	int json = 0, i = cli_parse(cmd, &json, argc, argv);

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
	for (size_t k = 0; k < ndt; k++)
		total += dt[k].size;
	if (json) {
		print_json(path, &info, snap, dt, ndt, total);
		goto cleanup;
	}
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
	for (size_t k = 0; k < ndt; k++) {
		format_u128(num, sizeof(num), dt[k].size);
		printf("%-18s domain %" PRIu32 ": %" PRIu64 " traces, %s B\n",
		       k ? "" : "domains:", dt[k].domain, dt[k].count, num);
	}
	print_meta(&snap->meta, snap);
cleanup:
	free(dt);
	tm_snapshot_free(snap);
	return fflush(stdout) ? 1 : 0;
}

const struct cli_command cmd_info = {
	.name = "info",
	.usage = "info FILE [--json]",
	.summary = "What a snapshot file holds: format, counts, domains and capture metadata.",
	.run = run_info,
	.tables = info_tables,
	.ntables = 1,
	.operands_min = 1,
	.operands_max = 1,
};
