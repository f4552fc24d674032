/* Live commands render statistics exactly as `tmbpf stats` does. */
#include "cli/live_render.h"

#include <string.h>

int live_render_statistics(const struct tm_stats_options *o, const struct tm_snapshot *snap,
			   FILE *out)
{
	int err = tm_stats_render_top(out, NULL, "snapshot", snap, o);

	if (err) {
		fprintf(stderr, "tmbpf: statistics: %s\n", tm_stats_strerror(err));
		return 1;
	}
	return 0;
}
