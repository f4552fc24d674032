/* Line-table decoders, transcribed from CPython's Objects/codeobject.c of
 * each version (PyCode_Addr2Line and the PyCodeAddressRange helpers). */
#include "target/linetable.h"

int tm_lnotab_line(const uint8_t *tab, size_t len, int firstlineno, int64_t addr)
{
	int64_t a = 0;
	int line = firstlineno;

	/* 3.8/3.9 PyCode_Addr2Line: an odd trailing byte is ignored. */
	for (size_t i = 0; i + 1 < len; i += 2) {
		a += tab[i];
		if (a > addr)
			break;
		line += (int8_t)tab[i + 1];
	}
	return line;
}

int tm_linetable310_line(const uint8_t *tab, size_t len, int firstlineno, int64_t addr)
{
	int64_t start, end = 0;
	int line = firstlineno;

	if (addr < 0)
		return firstlineno;
	for (size_t i = 0; i + 1 < len; i += 2) {
		int ldelta = (int8_t)tab[i + 1];
		int range_line;

		start = end;
		end += tab[i];
		if (ldelta == -128) {
			range_line = -1;
		} else {
			line += ldelta;
			range_line = line;
		}
		if (start <= addr && addr < end)
			return range_line;
	}
	return -1;
}

static int scan_varint(const uint8_t *p, const uint8_t *limit, unsigned int *out)
{
	unsigned int read, val, shift = 0;

	if (p >= limit)
		return -1;
	read = *p++;
	val = read & 63;
	while (read & 64) {
		if (p >= limit || shift > 24)
			return -1;
		read = *p++;
		shift += 6;
		val |= (read & 63) << shift;
	}
	*out = val;
	return 0;
}

/* get_line_delta() of 3.11+: only codes 13 and 14 carry a svarint. */
static int line_delta(const uint8_t *p, const uint8_t *limit)
{
	int code = (p[0] >> 3) & 15;
	unsigned int v;

	switch (code) {
	case 13: /* PY_CODE_LOCATION_INFO_NO_COLUMNS */
	case 14: /* PY_CODE_LOCATION_INFO_LONG */
		if (scan_varint(p + 1, limit, &v))
			return 0;
		return (v & 1) ? -(int)(v >> 1) : (int)(v >> 1);
	case 11:
		return 1;
	case 12:
		return 2;
	default: /* 15 none, 10 same line, 0-9 short forms */
		return 0;
	}
}

int tm_locations_line(const uint8_t *tab, size_t len, int firstlineno, int64_t addr)
{
	const uint8_t *p = tab, *limit = tab + len;
	int64_t start, end = 0;
	int line = firstlineno;

	if (addr < 0)
		return firstlineno;
	while (p < limit) {
		int range_line;

		line += line_delta(p, limit);
		range_line = (p[0] >> 3) == 0x1f ? -1 : line; /* is_no_line_marker */
		start = end;
		end += 2 * ((p[0] & 7) + 1);
		do
			p++;
		while (p < limit && (*p & 128) == 0);
		if (start <= addr && addr < end)
			return range_line;
	}
	return -1;
}

int tm_linetable_line(enum tm_linetable_kind kind, const uint8_t *tab, size_t len,
		      int firstlineno, int64_t addr)
{
	switch (kind) {
	case TM_LINES_LNOTAB:
		return tm_lnotab_line(tab, len, firstlineno, addr);
	case TM_LINES_LINETABLE310:
		return tm_linetable310_line(tab, len, firstlineno, addr);
	case TM_LINES_LOCATIONS:
		return tm_locations_line(tab, len, firstlineno, addr);
	}
	return -1;
}
