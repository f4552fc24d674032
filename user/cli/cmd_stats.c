/* tmbpf stats FILE / tmbpf compare OLD NEW: tracemalloc's statistics() and
 * compare_to() on snapshot files, with the options of stats_options.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/stats_options.h"
#include "core/snapshot_io.h"

struct stats_ctx {
	struct tm_stats_options o;
};

static const struct cli_table stats_tables[] = {
	TM_STATS_CLI_TABLE(struct stats_ctx, o),
	TM_FILTER_CLI_TABLE(struct stats_ctx, o),
};

static struct tm_snapshot *load(const char *prog, const char *path)
{
	char err[256] = "";
	struct tm_snapshot *snap = tm_snapshot_load(path, err, sizeof(err));

	if (!snap)
		fprintf(stderr, "%s: %s: %s\n", prog, path, err[0] ? err : strerror(errno));
	return snap;
}

static int report(const char *prog, const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, tm_stats_strerror(err));
	return 1;
}

/* Parse the options; -1 to go on, else the exit code. */
static int parse(const struct cli_command *cmd, struct stats_ctx *c, int argc, char **argv,
		 int *first)
{
	int i = cli_parse(cmd, c, argc, argv);
	char prog[32];

	snprintf(prog, sizeof(prog), "tmbpf %s", cmd->name);
	if (i == CLI_HELP)
		return 0;
	if (i < 0 || tm_stats_options_check(&c->o, prog))
		return 2;
	*first = i;
	return -1;
}

static int run_stats(const struct cli_command *cmd, int argc, char **argv)
{
	static const char *const prog = "tmbpf stats";
	struct stats_ctx c;
	struct tm_snapshot *snap = NULL;
	const char *path;
	int rc, err, i = 0;

	tm_stats_options_init(&c.o);
	rc = parse(cmd, &c, argc, argv, &i);
	if (rc >= 0)
		goto cleanup;
	path = argv[i];
	rc = 1;
	snap = load(prog, path);
	if (!snap)
		goto cleanup;
	err = tm_stats_render_top(stdout, stderr, path, snap, &c.o);
	rc = err ? report(prog, path, err) : 0;
cleanup:
	tm_snapshot_free(snap);
	tm_stats_options_release(&c.o);
	return rc;
}

static int run_compare(const struct cli_command *cmd, int argc, char **argv)
{
	static const char *const prog = "tmbpf compare";
	struct stats_ctx c;
	struct tm_snapshot *old_snap = NULL, *new_snap = NULL;
	char label[512];
	int rc, err, i = 0;

	tm_stats_options_init(&c.o);
	rc = parse(cmd, &c, argc, argv, &i);
	if (rc >= 0)
		goto cleanup;
	rc = 1;
	old_snap = load(prog, argv[i]);
	if (!old_snap)
		goto cleanup;
	new_snap = load(prog, argv[i + 1]);
	if (!new_snap)
		goto cleanup;
	snprintf(label, sizeof(label), "%s -> %s", argv[i], argv[i + 1]);
	err = tm_stats_render_compare(stdout, stderr, label, old_snap, new_snap, &c.o);
	rc = err ? report(prog, label, err) : 0;
cleanup:
	tm_snapshot_free(old_snap);
	tm_snapshot_free(new_snap);
	tm_stats_options_release(&c.o);
	return rc;
}

const struct cli_command cmd_stats = {
	.name = "stats",
	.usage = "stats FILE [OPTIONS]",
	.summary = "The top statistics of a snapshot file, as tracemalloc's Snapshot.statistics().",
	.details = "SPEC: an fnmatch pattern, optionally followed by :LINENO. Text is byte-identical\n"
		   "to CPython's Lib/tracemalloc.py; no root needed.\n",
	.run = run_stats,
	.tables = stats_tables,
	.ntables = sizeof(stats_tables) / sizeof(stats_tables[0]),
	.operands_min = 1,
	.operands_max = 1,
};

const struct cli_command cmd_compare = {
	.name = "compare",
	.usage = "compare OLD NEW [OPTIONS]",
	.summary = "What grew between two snapshot files, as tracemalloc's Snapshot.compare_to().",
	.details = "Frames are matched by file name and line, so snapshots of other hosts and\n"
		   "versions compare.\n",
	.run = run_compare,
	.tables = stats_tables,
	.ntables = sizeof(stats_tables) / sizeof(stats_tables[0]),
	.operands_min = 2,
	.operands_max = 2,
};
