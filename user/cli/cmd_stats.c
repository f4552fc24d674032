/* tmbpf stats FILE / tmbpf compare OLD NEW: tracemalloc's statistics() and
 * compare_to() on snapshot files, with the options of stats_options.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/stats_options.h"
#include "core/snapshot_io.h"

static void usage(FILE *out, const char *synopsis)
{
	fprintf(out, "usage: tmbpf %s [OPTIONS]\n", synopsis);
	tm_stats_options_usage(out);
}

/* Parse options and up to want positional arguments. Returns -1 to go on,
 * else the exit code (0 after --help, 2 after a usage error). */
static int parse_args(int argc, char **argv, const char *prog, const char *synopsis,
		      struct tm_stats_options *o, const char **pos, int want)
{
	int npos = 0, only_pos = 0;

	for (int i = 1; i < argc; i++) {
		int r;

		if (!only_pos && (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))) {
			usage(stdout, synopsis);
			return 0;
		}
		if (!only_pos && !strcmp(argv[i], "--")) {
			only_pos = 1;
			continue;
		}
		if (!only_pos && argv[i][0] == '-' && argv[i][1]) {
			r = tm_stats_options_parse_one(o, prog, argc, argv, &i);
			if (r < 0)
				return 2;
			if (r == 0) {
				fprintf(stderr, "%s: unknown option '%s' (try 'tmbpf %s --help')\n", prog,
					argv[i], prog + strlen("tmbpf "));
				return 2;
			}
			continue;
		}
		if (npos == want) {
			fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[i]);
			return 2;
		}
		pos[npos++] = argv[i];
	}
	if (npos != want) {
		fprintf(stderr, "usage: tmbpf %s [OPTIONS]\n", synopsis);
		return 2;
	}
	return tm_stats_options_check(o, prog) ? 2 : -1;
}

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
	if (err == -EOVERFLOW)
		fprintf(stderr, "%s: %s: sizes or counts too large to add up in 64 bits\n", prog, what);
	else
		fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(-err));
	return 1;
}

int cmd_stats(int argc, char **argv)
{
	static const char *const prog = "tmbpf stats";
	struct tm_stats_options o;
	struct tm_snapshot *snap = NULL;
	const char *path = NULL;
	int rc, err;

	tm_stats_options_init(&o);
	rc = parse_args(argc, argv, prog, "stats FILE", &o, &path, 1);
	if (rc >= 0)
		goto cleanup;
	rc = 1;
	snap = load(prog, path);
	if (!snap)
		goto cleanup;
	err = tm_stats_render_top(stdout, stderr, path, snap, &o);
	rc = err ? report(prog, path, err) : 0;
cleanup:
	tm_snapshot_free(snap);
	tm_stats_options_release(&o);
	return rc;
}

int cmd_compare(int argc, char **argv)
{
	static const char *const prog = "tmbpf compare";
	struct tm_stats_options o;
	struct tm_snapshot *old_snap = NULL, *new_snap = NULL;
	const char *paths[2] = { NULL, NULL };
	char label[512];
	int rc, err;

	tm_stats_options_init(&o);
	rc = parse_args(argc, argv, prog, "compare OLD NEW", &o, paths, 2);
	if (rc >= 0)
		goto cleanup;
	rc = 1;
	old_snap = load(prog, paths[0]);
	if (!old_snap)
		goto cleanup;
	new_snap = load(prog, paths[1]);
	if (!new_snap)
		goto cleanup;
	snprintf(label, sizeof(label), "%s -> %s", paths[0], paths[1]);
	err = tm_stats_render_compare(stdout, stderr, label, old_snap, new_snap, &o);
	rc = err ? report(prog, label, err) : 0;
cleanup:
	tm_snapshot_free(old_snap);
	tm_snapshot_free(new_snap);
	tm_stats_options_release(&o);
	return rc;
}
