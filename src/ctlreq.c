/* A strict, bounded parser of flat JSON objects (RFC 8259 syntax, restricted): no nesting, no
 * floats, no duplicate keys, \u escapes only for printable ASCII. Anything else is refused with
 * a short reason rather than guessed at. */
#include <string.h>

#include "ctlreq.h"

struct cur {
	const char *p, *end;
	const char *err;
};

static void
skip_ws(struct cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
		c->p++;
}

static int
fail(struct cur *c, const char *why)
{
	if (c->err == NULL)
		c->err = why;
	return -1;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* A string at c->p (which is '"') into out (size bytes with the NUL). */
static int
parse_string(struct cur *c, char *out, size_t size)
{
	size_t n = 0;

	c->p++;
	for (;;) {
		unsigned char ch;

		if (c->p >= c->end)
			return fail(c, "unterminated string");
		ch = (unsigned char)*c->p++;
		if (ch == '"')
			break;
		if (ch < 0x20)
			return fail(c, "control character in a string");
		if (ch == '\\') {
			if (c->p >= c->end)
				return fail(c, "unterminated string");
			switch (*c->p++) {
			case '"': ch = '"'; break;
			case '\\': ch = '\\'; break;
			case '/': ch = '/'; break;
			case 'b': ch = '\b'; break;
			case 'f': ch = '\f'; break;
			case 'n': ch = '\n'; break;
			case 'r': ch = '\r'; break;
			case 't': ch = '\t'; break;
			case 'u': {
				int v = 0;

				if (c->end - c->p < 4)
					return fail(c, "bad \\u escape");
				for (int i = 0; i < 4; i++) {
					int h = hexval(c->p[i]);

					if (h < 0)
						return fail(c, "bad \\u escape");
					v = v * 16 + h;
				}
				c->p += 4;
				if (v < 0x20 || v > 0x7e)
					return fail(c, "\\u escape outside printable ASCII");
				ch = (unsigned char)v;
				break;
			}
			default:
				return fail(c, "bad escape");
			}
		}
		if (n + 1 >= size)
			return fail(c, "string too long");
		out[n++] = (char)ch;
	}
	out[n] = '\0';
	return 0;
}

/* An integer: -?(0|[1-9][0-9]*), at most 18 digits, no fraction or exponent. */
static int
parse_number(struct cur *c, long long *out)
{
	int neg = 0, digits = 0;
	long long v = 0;

	if (*c->p == '-') {
		neg = 1;
		c->p++;
	}
	if (c->p >= c->end || *c->p < '0' || *c->p > '9')
		return fail(c, "bad number");
	if (*c->p == '0' && c->p + 1 < c->end && c->p[1] >= '0' && c->p[1] <= '9')
		return fail(c, "leading zero in a number");
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		if (++digits > 18)
			return fail(c, "number too large");
		v = v * 10 + (*c->p++ - '0');
	}
	if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E'))
		return fail(c, "only integers are accepted");
	*out = neg ? -v : v;
	return 0;
}

static int
literal(struct cur *c, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return fail(c, "unexpected character");
	c->p += n;
	return 0;
}

static int
parse_value(struct cur *c, struct ctlreq_member *m)
{
	if (c->p >= c->end)
		return fail(c, "missing value");
	switch (*c->p) {
	case '"':
		m->type = CTLREQ_STRING;
		return parse_string(c, m->str, sizeof(m->str));
	case 't':
		m->type = CTLREQ_BOOL;
		m->num = 1;
		return literal(c, "true");
	case 'f':
		m->type = CTLREQ_BOOL;
		m->num = 0;
		return literal(c, "false");
	case '{':
	case '[':
		return fail(c, "nested values are not accepted");
	case 'n':
		return fail(c, "null is not accepted");
	default:
		m->type = CTLREQ_NUMBER;
		return parse_number(c, &m->num);
	}
}

int
CTLREQ_Parse(const char *buf, size_t len, struct ctlreq *r, const char **err)
{
	struct cur c = { .p = buf, .end = buf + len };

	r->n = 0;
	skip_ws(&c);
	if (c.p >= c.end || *c.p != '{') {
		fail(&c, "not a JSON object");
		goto out;
	}
	c.p++;
	skip_ws(&c);
	if (c.p < c.end && *c.p == '}') {
		c.p++;
	} else {
		for (;;) {
			struct ctlreq_member *m;

			if (r->n >= CTLREQ_MAX_MEMBERS) {
				fail(&c, "too many members");
				goto out;
			}
			m = &r->m[r->n];
			memset(m, 0, sizeof(*m));
			skip_ws(&c);
			if (c.p >= c.end || *c.p != '"') {
				fail(&c, "expected a member name");
				goto out;
			}
			if (parse_string(&c, m->key, sizeof(m->key)) < 0)
				goto out;
			if (CTLREQ_Get(r, m->key) != NULL) {
				fail(&c, "duplicate member");
				goto out;
			}
			skip_ws(&c);
			if (c.p >= c.end || *c.p != ':') {
				fail(&c, "expected ':'");
				goto out;
			}
			c.p++;
			skip_ws(&c);
			if (parse_value(&c, m) < 0)
				goto out;
			r->n++;
			skip_ws(&c);
			if (c.p < c.end && *c.p == ',') {
				c.p++;
				continue;
			}
			if (c.p < c.end && *c.p == '}') {
				c.p++;
				break;
			}
			fail(&c, "expected ',' or '}'");
			goto out;
		}
	}
	skip_ws(&c);
	if (c.p != c.end)
		fail(&c, "trailing characters after the object");
out:
	if (c.err != NULL) {
		r->n = 0;
		*err = c.err;
		return -1;
	}
	return 0;
}

const struct ctlreq_member *
CTLREQ_Get(const struct ctlreq *r, const char *key)
{
	for (unsigned i = 0; i < r->n; i++)
		if (strcmp(r->m[i].key, key) == 0)
			return &r->m[i];
	return NULL;
}
