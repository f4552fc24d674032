/* Snapshots as profiles: what the pprof, folded-stack and flame-graph
 * writers share (pprof_write.c, folded_write.c, flamegraph_write.c; formats
 * in docs/formats.md). These views weigh each traceback by the live bytes
 * (and blocks) of its traces, as Snapshot.statistics('traceback') does.
 *
 * A frame's label is "NAME (FILE:LINE)" when its function name is known,
 * else "FILE:LINE" (str(Frame)). Functions return 0 or a negative errno. */
#ifndef TM_CORE_PROFILE_H
#define TM_CORE_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/format.h"
#include "core/snapshot.h"

struct tm_tb_total {
	uint64_t size_bytes; /* sum of the sizes of its traces */
	uint64_t count;      /* number of its traces */
};

/* totals[i] for the traceback of index i (tm_snapshot_traceback_at), in a
 * malloc'ed array the caller frees; *sum gets the snapshot's total. Returns
 * -EOVERFLOW when a sum does not fit in 64 bits, -ENOMEM. */
int tm_traceback_totals(const struct tm_snapshot *snap, struct tm_tb_total **totals,
			struct tm_tb_total *sum);

/* Append the frame's label. */
int tm_frame_label(struct tm_strbuf *sb, const struct tm_frame *frame);

#endif
