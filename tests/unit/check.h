/* Minimal test helpers. Each check prints one TAP-like line that
 * tests/run_all.sh counts: "ok - NAME" or "not ok - NAME: detail".
 * A test binary exits 1 when any check failed. */
#ifndef TM_TESTS_CHECK_H
#define TM_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond, ...)                                                                \
	do {                                                                            \
		if (cond) {                                                             \
			printf("ok - ");                                                \
			printf(__VA_ARGS__);                                            \
			printf("\n");                                                   \
		} else {                                                                \
			check_failures++;                                               \
			printf("not ok - ");                                            \
			printf(__VA_ARGS__);                                            \
			printf(" (%s:%d: %s)\n", __FILE__, __LINE__, #cond);            \
		}                                                                       \
	} while (0)

#define CHECK_STREQ(got, want, ...)                                                     \
	do {                                                                            \
		const char *g_ = (got), *w_ = (want);                                   \
		int same_ = g_ && w_ && strcmp(g_, w_) == 0;                            \
		CHECK(same_, __VA_ARGS__);                                              \
		if (!same_)                                                             \
			printf("#   got:  [%s]\n#   want: [%s]\n", g_ ? g_ : "(null)",   \
			       w_ ? w_ : "(null)");                                     \
	} while (0)

#define CHECK_DONE() (check_failures ? 1 : 0)

#endif
