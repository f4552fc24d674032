/* tmbpf merge FILE... -o OUT: the live blocks of several snapshot files
 * (any format tmbpf reads, any CPython version or host) as one snapshot
 * whose statistics are the sums of theirs (core/snapshot_merge.h). OUT is
 * prepared before the first input is read and written atomically at the
 * end; an input that cannot be read or merged stops the command with one
 * line naming it, and OUT is not created. */
#include <stdio.h>

#include "cli/commands.h"
#include "cli/output.h"
#include "core/snapshot_io.h"
#include "core/snapshot_merge.h"

struct merge_ctx {
	enum tm_file_format format;
	const char *output;
};

static const struct cli_option merge_options[] = {
	{ "output", KEY_OUTPUT, "FILE", "the merged snapshot (required; atomically, mode 0600)" },
	{ "format", KEY_FORMAT, TM_FORMAT_NAMES,
	  "output format (default: OUT's extension: .pickle/.pkl, .json, .pb.gz, .folded, .html, "
	  "else native)" },
	{ NULL, 0, NULL, NULL },
};

static int merge_set(void *dst, const struct cli_option *opt, const char *v, const char *prog)
{
	struct merge_ctx *c = dst;

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

static const struct cli_table merge_tables[] = {
	{ "Options", merge_options, merge_set, 0 },
};

/* Load one input and add it to the merge: 0, or 1 after one line. */
static int merge_one(struct tm_merge *m, const char *path)
{
	char err[512] = "";
	struct tm_snapshot *part = tm_snapshot_load(path, err, sizeof(err));
	int rc = 0;

	if (!part) {
		fprintf(stderr, "tmbpf: %s: %s\n", path, err);
		return 1;
	}
	if (tm_merge_add(m, part, err, sizeof(err))) {
		fprintf(stderr, "tmbpf: %s: %s\n", path, err);
		rc = 1;
	}
	tm_snapshot_free(part);
	return rc;
}

static int merge_files(char **inputs, int ninputs, const char *out, enum tm_file_format fmt)
{
	struct cli_output o = { 0 };
	struct tm_merge m = { 0 };
	struct tm_snapshot *merged = NULL;
	int rc = 1;

	if (cli_output_begin(&o, out, fmt))
		return 1;
	if (tm_merge_init(&m)) {
		fprintf(stderr, "tmbpf: merge: out of memory\n");
		goto cleanup;
	}
	for (int i = 0; i < ninputs; i++) {
		if (merge_one(&m, inputs[i]))
			goto cleanup;
	}
	merged = tm_merge_take(&m);
	rc = cli_output_commit(&o, merged);
cleanup:
	cli_output_abort(&o);
	tm_snapshot_free(merged);
	tm_merge_release(&m);
	return rc;
}

static int run_merge(const struct cli_command *cmd, int argc, char **argv)
{
	struct merge_ctx c = { TM_FORMAT_AUTO, NULL };
	int i = cli_parse(cmd, &c, argc, argv);

	if (i < 0)
		return i == CLI_HELP ? 0 : 2;
	if (!c.output)
		return (cli_usage_error(cmd, "-o FILE is required"), 2);
	return merge_files(argv + i, argc - i, c.output, c.format);
}

const struct cli_command cmd_merge = {
	.name = "merge",
	.usage = "merge FILE... -o OUT [OPTIONS]",
	.summary = "Sum the live blocks of several snapshot files (workers, hosts, versions) into one.",
	.details = "The statistics of OUT are the sums of the inputs' statistics, for every key.\n"
		   "Inputs: any format tmbpf reads; sampled ones only with the same interval.\n"
		   "What OUT's metadata says: docs/formats.md, \"Merged snapshots\".\n",
	.run = run_merge,
	.tables = merge_tables,
	.ntables = sizeof(merge_tables) / sizeof(merge_tables[0]),
	.operands_min = 1,
	.operands_max = -1,
};
