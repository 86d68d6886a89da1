/* A JSON writer into a caller's fixed buffer. Event lines are small and bounded: anything that
 * does not fit marks the line as overflowed instead of truncating it into invalid JSON. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

static void
put(struct json *j, const char *s, size_t n)
{
	if (j->overflow || j->len + n >= j->cap) {
		j->overflow = 1;
		return;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
}

static void
putc_(struct json *j, char c)
{
	put(j, &c, 1);
}

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 if invalid. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2; cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3; cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4; cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Reject overlong forms, surrogates and values past U+10FFFF. */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

size_t
JSON_Escape(const char *str, size_t n, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t o = 0, i = 0;

	while (i < n) {
		unsigned char c = s[i];
		char tmp[6];
		const char *rep = tmp;
		size_t rlen, adv = 1;

		switch (c) {
		case '"':  rep = "\\\""; rlen = 2; break;
		case '\\': rep = "\\\\"; rlen = 2; break;
		case '\n': rep = "\\n"; rlen = 2; break;
		case '\r': rep = "\\r"; rlen = 2; break;
		case '\t': rep = "\\t"; rlen = 2; break;
		case '\b': rep = "\\b"; rlen = 2; break;
		case '\f': rep = "\\f"; rlen = 2; break;
		default:
			if (c < 0x20 || c == 0x7f) {
				goto escape_byte;
			} else if (c < 0x80) {
				tmp[0] = (char)c;
				rlen = 1;
			} else {
				adv = utf8_seq(s + i, n - i);
				if (adv == 0) {
					adv = 1;
					goto escape_byte;
				}
				rep = (const char *)s + i;
				rlen = adv;
			}
			break;
escape_byte:
			tmp[0] = '\\'; tmp[1] = 'u'; tmp[2] = '0'; tmp[3] = '0';
			tmp[4] = hex[c >> 4]; tmp[5] = hex[c & 15];
			rlen = 6;
			break;
		}
		if (o + rlen >= cap)
			return (size_t)-1;
		memcpy(out + o, rep, rlen);
		o += rlen;
		i += adv;
	}
	if (o >= cap)
		return (size_t)-1;
	out[o] = '\0';
	return o;
}

static void
put_escaped(struct json *j, const char *s, size_t n)
{
	size_t w;

	putc_(j, '"');
	if (j->overflow)
		return;
	w = JSON_Escape(s, n, j->buf + j->len, j->cap - j->len);
	if (w == (size_t)-1) {
		j->overflow = 1;
		return;
	}
	j->len += w;
	putc_(j, '"');
}

static void
key(struct json *j, const char *k)
{
	if (j->need_comma[j->depth])
		putc_(j, ',');
	j->need_comma[j->depth] = 1;
	if (k) {
		putc_(j, '"');
		put(j, k, strlen(k));
		put(j, "\":", 2);
	}
}

void
JSON_Init(struct json *j, char *buf, size_t cap)
{
	j->buf = buf;
	j->cap = cap;
	j->len = 0;
	j->overflow = 0;
	j->depth = 0;
	memset(j->need_comma, 0, sizeof(j->need_comma));
	putc_(j, '{');
}

static void close_(struct json *j, char c);

size_t
JSON_Finish(struct json *j)
{
	while (j->depth > 0)
		close_(j, j->closer[j->depth]);
	put(j, "}\n", 2);
	if (j->overflow)
		return 0;
	j->buf[j->len] = '\0';
	return j->len;
}

void
JSON_Str(struct json *j, const char *k, const char *val)
{
	JSON_StrN(j, k, val, strlen(val));
}

void
JSON_StrN(struct json *j, const char *k, const char *val, size_t n)
{
	key(j, k);
	put_escaped(j, val, n);
}

void
JSON_U64(struct json *j, const char *k, uint64_t val)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, val);

	key(j, k);
	put(j, tmp, (size_t)n);
}

void
JSON_I64(struct json *j, const char *k, int64_t val)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRId64, val);

	key(j, k);
	put(j, tmp, (size_t)n);
}

void
JSON_Bool(struct json *j, const char *k, int val)
{
	key(j, k);
	if (val)
		put(j, "true", 4);
	else
		put(j, "false", 5);
}

void
JSON_Double(struct json *j, const char *k, double val, int decimals)
{
	char tmp[48];
	int n = snprintf(tmp, sizeof(tmp), "%.*f", decimals, val);

	key(j, k);
	if (n <= 0 || (size_t)n >= sizeof(tmp) || !isfinite(val))
		put(j, "null", 4);
	else
		put(j, tmp, (size_t)n);
}

static void
open_(struct json *j, const char *k, char c)
{
	key(j, k);
	putc_(j, c);
	if (j->depth + 1 >= JSON_MAX_DEPTH) {
		j->overflow = 1;
		return;
	}
	j->depth++;
	j->need_comma[j->depth] = 0;
	j->closer[j->depth] = c == '{' ? '}' : ']';
}

static void
close_(struct json *j, char c)
{
	if (j->depth == 0 || j->closer[j->depth] != c) {
		j->overflow = 1;
		return;
	}
	j->depth--;
	putc_(j, c);
}

void
JSON_ObjectOpen(struct json *j, const char *k)
{
	open_(j, k, '{');
}

void
JSON_ObjectClose(struct json *j)
{
	close_(j, '}');
}

void
JSON_ArrayOpen(struct json *j, const char *k)
{
	open_(j, k, '[');
}

void
JSON_ArrayStr(struct json *j, const char *val)
{
	key(j, NULL);
	put_escaped(j, val, strlen(val));
}

void
JSON_ArrayClose(struct json *j)
{
	close_(j, ']');
}
