/* tmbpf convert IN OUT and tmbpf flamegraph FILE -o OUT.
 * convert loads any snapshot file (native or tracemalloc pickle, sniffed from
 * the content) and writes it atomically in the format named by --format, else
 * by OUT's extension (core/snapshot_io.h); flamegraph writes the flame graph
 * page. Both take the filters of `tmbpf stats` (stats_options.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/output.h"
#include "cli/stats_options.h"
#include "core/snapshot_io.h"

struct convert_ctx {
	enum tm_file_format format;
	const char *output;
	struct tm_stats_options f; /* filters only */
};

static const struct cli_option convert_options[] = {
	{ "format", KEY_FORMAT, TM_FORMAT_NAMES,
	  "output format (default: OUT's extension: .pickle/.pkl, .json, .pb.gz, .folded, .html, "
	  "else native)" },
	{ NULL, 0, NULL, NULL },
};

static const struct cli_option flamegraph_options[] = {
	{ "output", KEY_OUTPUT, "FILE", "the page to write (required; atomically, mode 0600)" },
	{ NULL, 0, NULL, NULL },
};

static int convert_set(void *dst, const struct cli_option *opt, const char *v, const char *prog)
{
	struct convert_ctx *c = dst;

	if (opt->key == KEY_OUTPUT) {
		c->output = v;
		return 0;
	}
	if (tm_format_parse(v, &c->format)) {
		fprintf(stderr, "%s: unknown format '%s' (%s)\n", prog, v, TM_FORMAT_NAMES);
		return -1;
	}
	return 0;
}

static const struct cli_table convert_tables[] = {
	{ "Options", convert_options, convert_set, 0 },
	TM_FILTER_CLI_TABLE(struct convert_ctx, f),
};

static const struct cli_table flamegraph_tables[] = {
	{ "Options", flamegraph_options, convert_set, 0 },
	TM_FILTER_CLI_TABLE(struct convert_ctx, f),
};

/* Load in, filter, write out (prepared before loading: a bad OUT fails
 * before minutes of loading). */
static int convert_to(const char *in, const char *out, enum tm_file_format fmt,
		      const struct tm_stats_options *f)
{
	struct tm_snapshot *snap = NULL, *own = NULL;
	const struct tm_snapshot *view;
	struct cli_output o = { 0 };
	char err[512];
	int rc = 1;

	if (cli_output_begin(&o, out, fmt))
		return 1;
	snap = tm_snapshot_load(in, err, sizeof(err));
	if (!snap) {
		fprintf(stderr, "tmbpf: %s: %s\n", in, err);
		goto cleanup;
	}
	view = tm_stats_filtered(snap, f, &own);
	if (!view) {
		fprintf(stderr, "tmbpf: %s: %s\n", in, tm_stats_strerror(-errno));
		goto cleanup;
	}
	rc = cli_output_commit(&o, view);
cleanup:
	cli_output_abort(&o);
	tm_snapshot_free(own);
	tm_snapshot_free(snap);
	return rc;
}

static int run_convert(const struct cli_command *cmd, int argc, char **argv)
{
	struct convert_ctx c = { TM_FORMAT_AUTO, NULL, { 0 } };
	int i, rc;

	tm_stats_options_init(&c.f);
	i = cli_parse(cmd, &c, argc, argv);
	if (i < 0)
		rc = i == CLI_HELP ? 0 : 2;
	else
		rc = convert_to(argv[i], argv[i + 1], c.format, &c.f);
	tm_stats_options_release(&c.f);
	return rc;
}

static int run_flamegraph(const struct cli_command *cmd, int argc, char **argv)
{
	struct convert_ctx c = { TM_FORMAT_HTML, NULL, { 0 } };
	int i, rc;

	tm_stats_options_init(&c.f);
	i = cli_parse(cmd, &c, argc, argv);
	if (i < 0)
		rc = i == CLI_HELP ? 0 : 2;
	else if (!c.output)
		rc = (cli_usage_error(cmd, "-o FILE is required"), 2);
	else
		rc = convert_to(argv[i], c.output, TM_FORMAT_HTML, &c.f);
	tm_stats_options_release(&c.f);
	return rc;
}

const struct cli_command cmd_convert = {
	.name = "convert",
	.usage = "convert IN OUT [OPTIONS]",
	.summary = "Convert a snapshot file (native or tracemalloc pickle, told apart by content).",
	.details = "Writes tracemalloc pickles, tmbpf's native format, JSON, pprof (go tool pprof,\n"
		   "Pyroscope, Parca), folded stacks (flamegraph.pl, speedscope) or a flame graph\n"
		   "page (docs/formats.md).\n",
	.run = run_convert,
	.tables = convert_tables,
	.ntables = sizeof(convert_tables) / sizeof(convert_tables[0]),
	.operands_min = 2,
	.operands_max = 2,
};

const struct cli_command cmd_flamegraph = {
	.name = "flamegraph",
	.usage = "flamegraph FILE -o OUT.html [OPTIONS]",
	.summary = "A flame graph of a snapshot's live bytes by traceback: one self-contained HTML page.",
	.details = "Search (regular expressions) and click-to-zoom; no network needed to view it.\n",
	.run = run_flamegraph,
	.tables = flamegraph_tables,
	.ntables = sizeof(flamegraph_tables) / sizeof(flamegraph_tables[0]),
	.operands_min = 1,
	.operands_max = 1,
};
