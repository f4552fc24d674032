/* Folded stacks (Brendan Gregg's flamegraph.pl input, also read by
 * speedscope, inferno and Grafana): one line per traceback,
 * "OLDEST;...;MOST_RECENT BYTES", the frames' labels (profile.h) root first,
 * weighted by the live bytes of the traces that share the traceback. The
 * format has no escapes: a ';' or a line break inside a label becomes '_'. */
#include "core/profile.h"
#include "core/snapshot_io.h"
#include "core/snapshot_io_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int put_line(struct tm_out *o, struct tm_strbuf *sb, const struct tm_traceback *tb,
		    uint64_t bytes)
{
	int err = 0;

	tm_strbuf_reset(sb);
	for (uint32_t k = tb->nframe; k-- > 0 && !err;) {
		size_t start = sb->len;

		err = tm_frame_label(sb, &tb->frames[k]);
		for (size_t i = start; !err && i < sb->len; i++)
			if (sb->data[i] == ';' || sb->data[i] == '\n' || sb->data[i] == '\r')
				sb->data[i] = '_';
		if (!err && k)
			err = tm_strbuf_append(sb, ";", 1);
	}
	if (!err)
		err = tm_strbuf_appendf(sb, " %" PRIu64 "\n", bytes);
	return err ? err : tm_out_write(o, sb->data, sb->len);
}

int tm_folded_write(const struct tm_snapshot *snap, FILE *fp, char *err, size_t errlen)
{
	struct tm_tb_total *totals = NULL, sum;
	struct tm_strbuf sb;
	struct tm_out o;
	int ret;

	tm_strbuf_init(&sb);
	ret = tm_out_init(&o, fp, 1 << 16);
	if (!ret)
		ret = tm_traceback_totals(snap, &totals, &sum);
	for (size_t i = 0; !ret && i < tm_snapshot_ntracebacks(snap); i++)
		if (totals[i].count)
			ret = put_line(&o, &sb, tm_snapshot_traceback_at(snap, i), totals[i].size_bytes);
	if (!ret)
		ret = tm_out_flush(&o);
	if (ret == -EOVERFLOW)
		tm_io_errf(err, errlen, "cannot write folded stacks: sizes add up to more than 2^64");
	else if (ret)
		tm_io_errf(err, errlen, "cannot write folded stacks: %s", strerror(-ret));
	free(totals);
	tm_strbuf_release(&sb);
	tm_out_release(&o);
	return ret;
}
