/* Diagnostics from the library layers, in one place (as libbpf_set_print).
 *
 * Library code (placement, target, patch, capture) never prints: it calls
 * tm_log() and the application decides where lines go. The CLI installs a
 * callback that writes "tmbpf: " + the line to stderr, showing TM_LOG_DEBUG
 * lines only with -v. Without a callback nothing is printed. Messages are
 * one line without the trailing newline; the callback may be called from the
 * thread that drives a capture session only (the library is not
 * multi-threaded). */
#ifndef TM_CORE_LOG_H
#define TM_CORE_LOG_H

enum tm_log_level {
	TM_LOG_WARN = 0,  /* something the user must know: coverage lost, a fallback taken */
	TM_LOG_INFO,      /* what was done to the target (announced changes) */
	TM_LOG_DEBUG,     /* details for -v: probe placement, routes, counts */
	TM_LOG_TRACE,     /* -vv: libbpf's own debug output */
};

typedef void (*tm_log_fn)(enum tm_log_level level, const char *line);

/* Install fn (NULL: silence); returns the previous callback. */
tm_log_fn tm_log_set(tm_log_fn fn);

/* Format one line and hand it to the callback (truncated at 1 KiB). */
void tm_log(enum tm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 1 when a callback is installed that wants level (tm_log_set_level). Lets
 * callers skip building expensive debug text. */
int tm_log_enabled(enum tm_log_level level);
/* The highest level the callback wants (default TM_LOG_INFO). */
void tm_log_set_level(enum tm_log_level max);

/* Progress of long offline work (loading a large file), also through a
 * callback: done of total bytes (total 0: unknown); a last call with
 * done == total ends it. what names the work ("loading"). */
typedef void (*tm_progress_fn)(const char *what, unsigned long long done,
			       unsigned long long total);
void tm_progress_set(tm_progress_fn fn);
void tm_progress(const char *what, unsigned long long done, unsigned long long total);

#endif
