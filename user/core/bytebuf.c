/* Growing byte buffers (bytebuf.h). */
#include "core/bytebuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void tm_bytebuf_put(struct tm_bytebuf *b, const void *data, size_t len)
{
	if (b->err)
		return;
	if (b->cap - b->len < len) {
		size_t ncap = b->cap ? b->cap : 256;
		unsigned char *n;

		while (ncap - b->len < len)
			ncap *= 2;
		n = realloc(b->p, ncap);
		if (!n) {
			b->err = -ENOMEM;
			return;
		}
		b->p = n;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

void tm_bytebuf_varint(struct tm_bytebuf *b, uint64_t v)
{
	unsigned char tmp[10];
	unsigned n = 0;

	do {
		tmp[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	tm_bytebuf_put(b, tmp, n);
}
