/* The log callback (log.h). */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

static tm_log_fn log_fn;
static enum tm_log_level log_max = TM_LOG_INFO;

tm_log_fn tm_log_set(tm_log_fn fn)
{
	tm_log_fn old = log_fn;

	log_fn = fn;
	return old;
}

void tm_log_set_level(enum tm_log_level max)
{
	log_max = max;
}

int tm_log_enabled(enum tm_log_level level)
{
	return log_fn && level <= log_max;
}

void tm_log(enum tm_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!tm_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_fn(level, line);
}

static tm_progress_fn progress_fn;

void tm_progress_set(tm_progress_fn fn)
{
	progress_fn = fn;
}

void tm_progress(const char *what, unsigned long long done, unsigned long long total)
{
	if (progress_fn)
		progress_fn(what, done, total);
}
