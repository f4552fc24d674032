/* A growing byte buffer with a sticky error, for the binary writers
 * (native format, pprof): put bytes and varints, check err once at the end. */
#ifndef TM_CORE_BYTEBUF_H
#define TM_CORE_BYTEBUF_H

#include <stddef.h>
#include <stdint.h>

struct tm_bytebuf {
	unsigned char *p;
	size_t len, cap;
	int err; /* -ENOMEM once an append failed; later appends do nothing */
};

void tm_bytebuf_put(struct tm_bytebuf *b, const void *data, size_t len);
/* An unsigned LEB128 varint (protobuf's, and the native format's). */
void tm_bytebuf_varint(struct tm_bytebuf *b, uint64_t v);

#endif
