/* Parsing of the statistics options (see stats_options.h). */
#include "cli/stats_options.h"

#include <stdio.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

void tm_stats_options_init(struct tm_stats_options *o)
{
	memset(o, 0, sizeof(*o));
	o->key = TM_KEY_LINENO;
	o->limit = TM_STATS_DEFAULT_LIMIT;
}

void tm_stats_options_release(struct tm_stats_options *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->nfilters; i++)
		tm_filter_release(&o->filters[i]);
	free(o->filters);
	o->filters = NULL;
	o->nfilters = 0;
}

/* Strict decimal parse; 0 or -EINVAL. */
static int parse_long(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (!*s)
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int tm_filter_spec_parse(struct tm_filter *f, const char *spec, int inclusive, int all_frames)
{
	const char *colon = strrchr(spec, ':');
	long long lineno = 0;
	int has_lineno = 0, err;
	char *pattern;

	memset(f, 0, sizeof(*f));
	if (colon && colon != spec && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
		if (parse_long(colon + 1, 0, INT64_MAX, &lineno))
			return -EINVAL;
		has_lineno = 1;
		pattern = strndup(spec, (size_t)(colon - spec));
	} else {
		pattern = strdup(spec);
	}
	if (!pattern)
		return -ENOMEM;
	err = tm_filter_init(f, inclusive, pattern, has_lineno, lineno, all_frames, 0, 0);
	free(pattern);
	return err;
}

static int add_filter(struct tm_stats_options *o, const struct tm_filter *f)
{
	struct tm_filter *n = realloc(o->filters, (o->nfilters + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	o->filters = n;
	o->filters[o->nfilters++] = *f;
	return 0;
}

static int usage_err(const char *prog, const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", prog);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return -1;
}

static int parse_filter_opt(struct tm_stats_options *o, const char *prog, int key, const char *v)
{
	int inclusive = key == KEY_INCLUDE || key == KEY_INCLUDE_ANY;
	int all_frames = key == KEY_INCLUDE_ANY || key == KEY_EXCLUDE_ANY;
	struct tm_filter f;
	int err = tm_filter_spec_parse(&f, v, inclusive, all_frames);

	if (!err)
		err = add_filter(o, &f);
	if (err) {
		tm_filter_release(&f);
		if (err == -ENOMEM)
			return usage_err(prog, "out of memory parsing '%s'", v);
		return usage_err(prog, "bad filter '%s' (expected PATTERN or PATTERN:LINENO)", v);
	}
	return 0;
}

static int parse_domain_opt(struct tm_stats_options *o, const char *prog, int inclusive,
			    const char *v)
{
	struct tm_filter f;
	long long d;

	if (parse_long(v, 0, UINT32_MAX, &d))
		return usage_err(prog, "bad domain '%s' (expected 0..4294967295)", v);
	tm_domain_filter_init(&f, inclusive, (uint32_t)d);
	if (add_filter(o, &f))
		return usage_err(prog, "out of memory parsing '%s'", v);
	return 0;
}

const struct cli_option tm_stats_cli_options[] = {
	{ "key", KEY_KEY, "lineno|filename|traceback|age", "group statistics by (default lineno)" },
	{ "cumulative", KEY_CUMULATIVE, NULL, "count every frame of each traceback" },
	{ "limit", KEY_LIMIT, "N", "show N statistics, 0 = all (default 10)" },
	{ "traceback", KEY_TRACEBACK, NULL, "print each statistic's traceback" },
	{ "traceback-limit", KEY_TRACEBACK_LIMIT, "N", "... only N frames (Traceback.format limit)" },
	{ "most-recent-first", KEY_MOST_RECENT_FIRST, NULL, "... most recent frame first" },
	{ "json", KEY_JSON, NULL, "JSON instead of tracemalloc's text" },
	{ NULL, 0, NULL, NULL },
};

const struct cli_option tm_filter_cli_options[] = {
	{ "include", KEY_INCLUDE, "SPEC", "keep traces whose allocating frame matches SPEC" },
	{ "exclude", KEY_EXCLUDE, "SPEC", "drop traces whose allocating frame matches SPEC" },
	{ "include-any", KEY_INCLUDE_ANY, "SPEC", "keep traces with any frame matching SPEC" },
	{ "exclude-any", KEY_EXCLUDE_ANY, "SPEC", "drop traces with any frame matching SPEC" },
	{ "domain", KEY_DOMAIN, "N", "keep traces of address domain N" },
	{ "exclude-domain", KEY_EXCLUDE_DOMAIN, "N", "drop traces of address domain N" },
	{ "older-than", KEY_OLDER_THAN, "DURATION",
	  "keep blocks allocated at least DURATION before the snapshot (5, 90s, 10m, 2h, 1d)" },
	{ "younger-than", KEY_YOUNGER_THAN, "DURATION",
	  "keep blocks allocated less than DURATION before the snapshot" },
	{ NULL, 0, NULL, NULL },
};

int tm_stats_cli_set(void *dst, const struct cli_option *opt, const char *v, const char *prog)
{
	struct tm_stats_options *o = dst;
	long long n;

	switch (opt->key) {
	case KEY_CUMULATIVE:
		o->cumulative = 1;
		return 0;
	case KEY_TRACEBACK:
		o->show_traceback = 1;
		return 0;
	case KEY_MOST_RECENT_FIRST:
		o->most_recent_first = 1;
		return 0;
	case KEY_JSON:
		o->json = 1;
		return 0;
	case KEY_KEY:
		o->key_age = !strcmp(v, "age");
		if (o->key_age)
			o->key = TM_KEY_LINENO;
		else if (tm_key_type_parse(v, &o->key))
			return usage_err(prog, "unknown --key '%s' (lineno, filename, traceback or age)", v);
		return 0;
	case KEY_OLDER_THAN:
		o->age.has_older = 1;
		return cli_parse_duration(prog, opt->name, v, &o->age.older_ns);
	case KEY_YOUNGER_THAN:
		o->age.has_younger = 1;
		return cli_parse_duration(prog, opt->name, v, &o->age.younger_ns);
	case KEY_LIMIT:
		if (parse_long(v, 0, LONG_MAX, &n))
			return usage_err(prog, "bad --limit '%s' (a count, 0 = all)", v);
		o->limit = (unsigned long)n;
		return 0;
	case KEY_TRACEBACK_LIMIT:
		if (parse_long(v, LONG_MIN, LONG_MAX, &n))
			return usage_err(prog, "bad --traceback-limit '%s'", v);
		o->has_traceback_limit = 1;
		o->traceback_limit = (long)n;
		o->show_traceback = 1;
		return 0;
	case KEY_INCLUDE: case KEY_EXCLUDE: case KEY_INCLUDE_ANY: case KEY_EXCLUDE_ANY:
		return parse_filter_opt(o, prog, opt->key, v);
	case KEY_DOMAIN:
		return parse_domain_opt(o, prog, 1, v);
	case KEY_EXCLUDE_DOMAIN:
		return parse_domain_opt(o, prog, 0, v);
	}
	return usage_err(prog, "unhandled option '%s' (a tmbpf bug)", opt->name);
}

int tm_stats_options_check(const struct tm_stats_options *o, const char *prog)
{
	if (o->cumulative && o->key == TM_KEY_TRACEBACK)
		return usage_err(prog, "%s", "--cumulative cannot be used with --key traceback");
	if (o->cumulative && o->key_age)
		return usage_err(prog, "%s", "--cumulative cannot be used with --key age");
	if (o->key_age && !strcmp(prog, "tmbpf compare"))
		return usage_err(prog, "%s", "--key age is for one snapshot (stats, the live view)");
	return 0;
}

const struct tm_snapshot *tm_stats_filtered(const struct tm_snapshot *snap,
					    const struct tm_stats_options *o,
					    struct tm_snapshot **own)
{
	*own = NULL;
	if (!o->nfilters && !o->age.has_older && !o->age.has_younger)
		return snap;
	*own = tm_snapshot_filter_age(snap, o->filters, o->nfilters, &o->age);
	return *own;
}

const char *tm_stats_strerror(int err)
{
	if (err == -ENODATA)
		return "no allocation times (tracemalloc pickles have none; snapshots tmbpf takes "
		       "in its native format do)";
	if (err == -EOVERFLOW)
		return "sizes or counts too large to add up in 64 bits";
	return strerror(-err);
}
