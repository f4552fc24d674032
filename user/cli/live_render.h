/* Rendering statistics in the live commands (top, run): the same options
 * and the same text as `tmbpf stats` (stats_options.h). */
#ifndef TM_CLI_LIVE_RENDER_H
#define TM_CLI_LIVE_RENDER_H

#include <stdio.h>

#include "cli/stats_options.h"
#include "core/snapshot.h"

/* Print the top statistics of snap. Returns 0 or 1 after printing one line. */
int live_render_statistics(const struct tm_stats_options *o, const struct tm_snapshot *snap,
			   FILE *out);

#endif
