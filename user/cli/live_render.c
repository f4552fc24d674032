/* Live commands render statistics exactly as `tmbpf stats` does. */
#include "cli/live_render.h"

#include <stdlib.h>
#include <string.h>

#include "cli/stats_options.h"

void live_render_init(struct live_render *r)
{
	struct tm_stats_options *o = calloc(1, sizeof(*o));

	if (o)
		tm_stats_options_init(o);
	r->opts = o;
}

void live_render_release(struct live_render *r)
{
	if (r->opts) {
		tm_stats_options_release(r->opts);
		free(r->opts);
	}
	r->opts = NULL;
}

int live_render_parse_option(struct live_render *r, int argc, char **argv, int *i)
{
	if (!r->opts) {
		fprintf(stderr, "tmbpf: out of memory\n");
		return -1;
	}
	return tm_stats_options_parse_one(r->opts, "tmbpf", argc, argv, i);
}

int live_render_check(struct live_render *r)
{
	return !r->opts || tm_stats_options_check(r->opts, "tmbpf") ? -1 : 0;
}

int live_render_statistics(struct live_render *r, const struct tm_snapshot *snap, FILE *out)
{
	int err;

	if (live_render_check(r))
		return 1;
	err = tm_stats_render_top(out, NULL, "snapshot", snap, r->opts);
	if (err) {
		fprintf(stderr, "tmbpf: statistics: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}
