/* Rendering statistics in the live commands (top, run): the same options
 * and the same text as `tmbpf stats` (--key, --cumulative, --limit,
 * --traceback, filters, --json). */
#ifndef TM_CLI_LIVE_RENDER_H
#define TM_CLI_LIVE_RENDER_H

#include <stdio.h>

#include "core/snapshot.h"

struct live_render {
	void *opts; /* the stats command's parsed options */
};

void live_render_init(struct live_render *r);
void live_render_release(struct live_render *r);
/* 1 consumed, 0 not a rendering option, -1 usage error (printed). */
int live_render_parse_option(struct live_render *r, int argc, char **argv, int *i);
/* Checks needing all options (--cumulative with --key traceback): 0, or -1
 * after printing one usage line. Call before attaching. */
int live_render_check(struct live_render *r);
/* Print the top statistics of snap. Returns 0 or 1 after printing one line. */
int live_render_statistics(struct live_render *r, const struct tm_snapshot *snap, FILE *out);

#endif
