/* Parsing of the statistics options (see stats_options.h). */
#include "cli/stats_options.h"

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

void tm_stats_options_usage(FILE *out)
{
	fprintf(out,
		"  --key lineno|filename|traceback  group statistics by (default lineno)\n"
		"  --cumulative                     count every frame of each traceback\n"
		"  --limit N                        show N statistics, 0 = all (default 10)\n"
		"  --traceback                      print each statistic's traceback\n"
		"  --traceback-limit N              ... only N frames (Traceback.format limit)\n"
		"  --most-recent-first              ... most recent frame first\n"
		"  --include SPEC, --exclude SPEC   keep/drop traces whose allocating frame matches\n"
		"  --include-any SPEC, --exclude-any SPEC   ... whose traceback has a matching frame\n"
		"  --domain N, --exclude-domain N   keep/drop traces of address domain N\n"
		"  --json                           JSON output\n"
		"  SPEC: fnmatch pattern, optionally followed by :LINENO\n");
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

/* "--name VALUE" or "--name=VALUE": the value, or NULL when argv[*i] is not
 * this option. *missing is set when the value is absent. */
static const char *opt_value(const char *name, int argc, char **argv, int *i, int *missing)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n))
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n])
		return NULL;
	if (*i + 1 >= argc) {
		*missing = 1;
		return NULL;
	}
	return argv[++*i];
}

static int usage_err(const char *prog, const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", prog);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return -1;
}

static int parse_filter_opt(struct tm_stats_options *o, const char *prog, const char *opt,
			    const char *v)
{
	int inclusive = !strncmp(opt, "--include", 9);
	int all_frames = strstr(opt, "-any") != NULL;
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
	return 1;
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
	return 1;
}

static const char *const filter_opts[] = { "--include", "--exclude", "--include-any",
					    "--exclude-any" };

int tm_stats_options_parse_one(struct tm_stats_options *o, const char *prog, int argc,
			       char **argv, int *i)
{
	const char *a = argv[*i], *v;
	int missing = 0;
	long long n;

	if (!strcmp(a, "--cumulative"))
		return o->cumulative = 1;
	if (!strcmp(a, "--traceback"))
		return o->show_traceback = 1;
	if (!strcmp(a, "--most-recent-first"))
		return o->most_recent_first = 1;
	if (!strcmp(a, "--json"))
		return o->json = 1;
	if ((v = opt_value("--key", argc, argv, i, &missing))) {
		if (tm_key_type_parse(v, &o->key))
			return usage_err(prog, "unknown --key '%s' (lineno, filename or traceback)", v);
		return 1;
	}
	if ((v = opt_value("--limit", argc, argv, i, &missing))) {
		if (parse_long(v, 0, LONG_MAX, &n))
			return usage_err(prog, "bad --limit '%s' (a count, 0 = all)", v);
		o->limit = (unsigned long)n;
		return 1;
	}
	if ((v = opt_value("--traceback-limit", argc, argv, i, &missing))) {
		if (parse_long(v, LONG_MIN, LONG_MAX, &n))
			return usage_err(prog, "bad --traceback-limit '%s'", v);
		o->has_traceback_limit = 1;
		o->traceback_limit = (long)n;
		o->show_traceback = 1;
		return 1;
	}
	for (size_t k = 0; k < sizeof(filter_opts) / sizeof(filter_opts[0]) && !missing; k++) {
		if ((v = opt_value(filter_opts[k], argc, argv, i, &missing)))
			return parse_filter_opt(o, prog, filter_opts[k], v);
	}
	if (!missing && (v = opt_value("--domain", argc, argv, i, &missing)))
		return parse_domain_opt(o, prog, 1, v);
	if (!missing && (v = opt_value("--exclude-domain", argc, argv, i, &missing)))
		return parse_domain_opt(o, prog, 0, v);
	if (missing)
		return usage_err(prog, "option '%s' needs a value", a);
	return 0;
}

int tm_stats_options_check(const struct tm_stats_options *o, const char *prog)
{
	if (o->cumulative && o->key == TM_KEY_TRACEBACK)
		return usage_err(prog, "%s", "--cumulative cannot be used with --key traceback");
	return 0;
}
