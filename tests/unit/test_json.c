/* Unit tests for the JSON writer and escaper, and the EVE timestamp format. Event lines are read
 * by other programs: every output is compared with an exact expected string. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "event.h"
#include "json.h"
#include "tap.h"

/* Compare a line with its expected text; on a mismatch show both, newlines made visible. */
static void
show(const char *tag, const char *s)
{
	printf("#   %s ", tag);
	for (; *s; s++) {
		if (*s == '\n')
			fputs("\\n", stdout);
		else
			putchar(*s);
	}
	putchar('\n');
}

static void
line_is(size_t n, const char *got, const char *want, const char *what)
{
	int ok = n == strlen(want) && strcmp(got, want) == 0;

	TAP_OK(ok, "%s", what);
	if (!ok) {
		show("got ", n ? got : "(JSON_Finish returned 0)");
		show("want", want);
	}
}

/* Escape n bytes and compare with want; (size_t)-1 expected when want is NULL. */
static void
esc_is(const char *in, size_t n, const char *want, const char *what)
{
	char out[256];
	size_t r = JSON_Escape(in, n, out, sizeof(out));

	if (want == NULL) {
		TAP_OK(r == (size_t)-1, "escape %s: does not fit", what);
		return;
	}
	TAP_OK(r == strlen(want) && strcmp(out, want) == 0, "escape %s: got \"%s\", want \"%s\"",
	    what, r == (size_t)-1 ? "(size_t)-1" : out, want);
}

#define ESC(lit, want, what) esc_is(lit, sizeof(lit) - 1, want, what)

static void
test_escape(void)
{
	ESC("plain text 123", "plain text 123", "plain ASCII kept");
	ESC("", "", "empty string");
	ESC("a\"b", "a\\\"b", "quote");
	ESC("a\\b", "a\\\\b", "backslash");
	ESC("/", "/", "slash kept");
	ESC("\n\t\r\b\f", "\\n\\t\\r\\b\\f", "short escapes");
	ESC("\x01", "\\u0001", "0x01 as \\u0001");
	ESC("\x1f", "\\u001f", "0x1f as \\u001f");
	ESC("\x7f", "\\u007f", "DEL as \\u007f");
	ESC("a\0b", "a\\u0000b", "embedded NUL (length-counted)");
	ESC("caf\xc3\xa9", "caf\xc3\xa9", "valid 2-byte UTF-8 kept");
	ESC("\xe2\x82\xac", "\xe2\x82\xac", "valid 3-byte UTF-8 kept (euro)");
	ESC("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80", "valid 4-byte UTF-8 kept (emoji)");
	ESC("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf", "U+10FFFF kept");
	ESC("\xef\xbf\xbd", "\xef\xbf\xbd", "U+FFFD kept");
	ESC("\x80", "\\u0080", "lone continuation byte escaped");
	ESC("\xff\xfe", "\\u00ff\\u00fe", "0xff 0xfe escaped");
	ESC("\xc0\xaf", "\\u00c0\\u00af", "overlong 2-byte '/' escaped");
	ESC("\xc1\xbf", "\\u00c1\\u00bf", "overlong 2-byte U+7F escaped");
	ESC("\xe0\x80\xaf", "\\u00e0\\u0080\\u00af", "overlong 3-byte escaped");
	ESC("\xf0\x80\x80\xaf", "\\u00f0\\u0080\\u0080\\u00af", "overlong 4-byte escaped");
	ESC("\xed\xa0\x80", "\\u00ed\\u00a0\\u0080", "surrogate U+D800 escaped");
	ESC("\xed\xbf\xbf", "\\u00ed\\u00bf\\u00bf", "surrogate U+DFFF escaped");
	ESC("\xed\x9f\xbf", "\xed\x9f\xbf", "U+D7FF (just below surrogates) kept");
	ESC("\xf4\x90\x80\x80", "\\u00f4\\u0090\\u0080\\u0080", "above U+10FFFF escaped");
	ESC("\xf8\x88\x80\x80\x80", "\\u00f8\\u0088\\u0080\\u0080\\u0080", "5-byte form escaped");
	ESC("x\xe2\x82", "x\\u00e2\\u0082", "sequence cut by the end escaped");
	ESC("\xe2\x82" "A", "\\u00e2\\u0082A", "sequence cut by ASCII escaped, ASCII kept");
	ESC("\xc3\xa9\xc3", "\xc3\xa9\\u00c3", "valid then truncated");
	/* The cut must be by length, not NUL: a valid sequence split by n is escaped. */
	esc_is("\xe2\x82\xac", 2, "\\u00e2\\u0082", "sequence split by n escaped");

	/* Output size: room for the text and the NUL, or (size_t)-1. */
	{
		char out[16];
		size_t r;

		memset(out, '#', sizeof(out));
		TAP_OK(JSON_Escape("abc", 3, out, 4) == 3 && strcmp(out, "abc") == 0, "escape size: exact fit with NUL");
		memset(out, '#', sizeof(out));
		r = JSON_Escape("abc", 3, out, 3);
		TAP_OK(r == (size_t)-1 && out[3] == '#', "escape size: no room for NUL -> (size_t)-1, nothing past cap");
		TAP_OK(JSON_Escape("", 0, out, 0) == (size_t)-1, "escape size: cap 0");
		TAP_OK(JSON_Escape("", 0, out, 1) == 0 && out[0] == '\0', "escape size: empty into 1 byte");
		TAP_OK(JSON_Escape("\x01", 1, out, 7) == 6 && strcmp(out, "\\u0001") == 0, "escape size: \\u0001 fits in 7");
		memset(out, '#', sizeof(out));
		TAP_OK(JSON_Escape("\x01", 1, out, 6) == (size_t)-1 && out[6] == '#', "escape size: \\u0001 does not fit in 6");
		TAP_OK(JSON_Escape("a\"", 2, out, 3) == (size_t)-1, "escape size: escaped quote does not fit in 3");
		TAP_OK(JSON_Escape("\xe2\x82\xac", 3, out, 3) == (size_t)-1, "escape size: 3-byte char needs 4");
		TAP_OK(JSON_Escape("\xe2\x82\xac", 3, out, 4) == 3, "escape size: 3-byte char in 4");
	}
}

static void
test_writer(void)
{
	char buf[512];
	struct json j;
	size_t n;
	static const char want[] =
		"{\"a\":\"x\",\"n\":18446744073709551615,\"i\":-9223372036854775807,\"neg\":-1,"
		"\"min\":-9223372036854775808,\"t\":true,\"f\":false,\"d\":1.50,\"d0\":3,"
		"\"o\":{\"p\":{\"z\":0},\"arr\":[\"1\",\"2\\\"\"],\"empty\":[]},\"e\":{},"
		"\"s\":\"a\\nb\\u0000c\",\"last\":\"y\"}\n";

	JSON_Init(&j, buf, sizeof(buf));
	JSON_Str(&j, "a", "x");
	JSON_U64(&j, "n", UINT64_MAX);
	JSON_I64(&j, "i", -INT64_MAX);
	JSON_I64(&j, "neg", -1);
	JSON_I64(&j, "min", INT64_MIN);
	JSON_Bool(&j, "t", 1);
	JSON_Bool(&j, "f", 0);
	JSON_Double(&j, "d", 1.5, 2);
	JSON_Double(&j, "d0", 3.0, 0);
	JSON_ObjectOpen(&j, "o");
	JSON_ObjectOpen(&j, "p");
	JSON_U64(&j, "z", 0);
	JSON_ObjectClose(&j);
	JSON_ArrayOpen(&j, "arr");
	JSON_ArrayStr(&j, "1");
	JSON_ArrayStr(&j, "2\"");
	JSON_ArrayClose(&j);
	JSON_ArrayOpen(&j, "empty");
	JSON_ArrayClose(&j);
	JSON_ObjectClose(&j);
	JSON_ObjectOpen(&j, "e");
	JSON_ObjectClose(&j);
	JSON_StrN(&j, "s", "a\nb\0cIGNORED", 5);
	JSON_Str(&j, "last", "y");
	n = JSON_Finish(&j);
	line_is(n, buf, want, "writer: nested objects/arrays, commas, numbers, escapes");
	TAP_EQ_U(j.overflow, 0, "writer: no overflow");

	/* Empty object. */
	JSON_Init(&j, buf, sizeof(buf));
	n = JSON_Finish(&j);
	line_is(n, buf, "{}\n", "writer: empty object");

	/* Finish closes objects left open. */
	JSON_Init(&j, buf, sizeof(buf));
	JSON_ObjectOpen(&j, "o");
	JSON_ObjectOpen(&j, "p");
	JSON_U64(&j, "x", 1);
	n = JSON_Finish(&j);
	line_is(n, buf, "{\"o\":{\"p\":{\"x\":1}}}\n", "writer: Finish closes open objects");

	/* Doubles that JSON cannot represent are null. */
	JSON_Init(&j, buf, sizeof(buf));
	JSON_Double(&j, "nan", NAN, 2);
	JSON_Double(&j, "big", 1e300, 2);
	JSON_Double(&j, "r", 0.125, 2);
	n = JSON_Finish(&j);
	line_is(n, buf, "{\"nan\":null,\"big\":null,\"r\":0.12}\n", "writer: NaN and too-long doubles are null");

	/* Depth: 7 nested containers fit, the 8th overflows. */
	JSON_Init(&j, buf, sizeof(buf));
	for (int d = 0; d < JSON_MAX_DEPTH - 1; d++)
		JSON_ObjectOpen(&j, "k");
	TAP_EQ_U(j.overflow, 0, "depth: 7 nested objects accepted");
	for (int d = 0; d < JSON_MAX_DEPTH - 1; d++)
		JSON_ObjectClose(&j);
	n = JSON_Finish(&j);
	line_is(n, buf, "{\"k\":{\"k\":{\"k\":{\"k\":{\"k\":{\"k\":{\"k\":{}}}}}}}}\n", "depth: 7 levels written");
	JSON_Init(&j, buf, sizeof(buf));
	for (int d = 0; d < JSON_MAX_DEPTH; d++)
		JSON_ObjectOpen(&j, "k");
	TAP_EQ_U(j.overflow, 1, "depth: 8th nested object sets overflow");
	TAP_EQ_U(JSON_Finish(&j), 0, "depth: Finish returns 0");

	/* Closing more than was opened is an error, not a stray brace. */
	JSON_Init(&j, buf, sizeof(buf));
	JSON_ObjectClose(&j);
	TAP_OK(j.overflow == 1 && JSON_Finish(&j) == 0, "unbalanced close: overflow, Finish 0");
}

/* Lines that would not be JSON: the writer must give null, or refuse the line. */
static void
test_writer_invalid(void)
{
	char buf[128];
	struct json j;
	size_t n;

	/* Infinities have no JSON form (snprintf gives "inf"). */
	JSON_Init(&j, buf, sizeof(buf));
	JSON_Double(&j, "pinf", INFINITY, 2);
	JSON_Double(&j, "minf", -INFINITY, 2);
	n = JSON_Finish(&j);
	line_is(n, buf, "{\"pinf\":null,\"minf\":null}\n", "writer: infinities are null");

	/* Finish closes an open array with ']', not '}'. */
	JSON_Init(&j, buf, sizeof(buf));
	JSON_ObjectOpen(&j, "o");
	JSON_ArrayOpen(&j, "a");
	JSON_ArrayStr(&j, "x");
	n = JSON_Finish(&j);
	line_is(n, buf, "{\"o\":{\"a\":[\"x\"]}}\n", "writer: Finish closes open arrays and objects in order");

	/* Closing an array as an object: nothing checks it yet (no caller does it). */
	JSON_Init(&j, buf, sizeof(buf));
	JSON_ArrayOpen(&j, "a");
	JSON_ObjectClose(&j);
	n = JSON_Finish(&j);
	TAP_OK(n == 0 || strcmp(buf, "{\"a\":[]}\n") == 0, "writer: a mismatched close gives valid JSON or 0");
	if (n != 0 && strcmp(buf, "{\"a\":[]}\n") != 0)
		show("got ", buf);
}

/* Build a fixed line into cap bytes; returns JSON_Finish's result. */
static size_t
build_line(char *buf, size_t cap, int *overflow)
{
	struct json j;
	size_t n;

	JSON_Init(&j, buf, cap);
	JSON_Str(&j, "event_type", "rst");
	JSON_U64(&j, "flow_id", 1234567);
	JSON_ObjectOpen(&j, "rst");
	JSON_Str(&j, "cause", "ab\"c");
	JSON_ArrayOpen(&j, "evidence");
	JSON_ArrayStr(&j, "ttl");
	JSON_ArrayClose(&j);
	JSON_Bool(&j, "forged", 0);
	JSON_Double(&j, "rtt_ms", 1.25, 2);
	JSON_ObjectClose(&j);
	n = JSON_Finish(&j);
	*overflow = j.overflow;
	return n;
}

static void
test_overflow(void)
{
	char full[512], buf[512];
	int ovf, bad_ret = 0, bad_flag = 0, bad_past = 0, bad_text = 0;
	size_t len = build_line(full, sizeof(full), &ovf);

	line_is(len, full, "{\"event_type\":\"rst\",\"flow_id\":1234567,\"rst\":{\"cause\":\"ab\\\"c\","
	    "\"evidence\":[\"ttl\"],\"forged\":false,\"rtt_ms\":1.25}}\n", "overflow: reference line");
	/* Every buffer size: either the whole line (with its NUL) or 0 and the flag, and never a
	 * byte written past cap. */
	for (size_t cap = 1; cap <= len + 2; cap++) {
		size_t r;

		memset(buf, '#', sizeof(buf));
		r = build_line(buf, cap, &ovf);
		if (cap <= len) {
			if (r != 0)
				bad_ret++;
			if (!ovf)
				bad_flag++;
		} else {
			if (r != len)
				bad_ret++;
			if (ovf)
				bad_flag++;
			if (r == len && strcmp(buf, full) != 0)
				bad_text++;
		}
		for (size_t i = cap; i < sizeof(buf); i++)
			if (buf[i] != '#')
				bad_past++;
	}
	TAP_EQ_U(bad_ret, 0, "overflow: Finish returns 0 exactly when the line does not fit");
	TAP_EQ_U(bad_flag, 0, "overflow: flag set exactly when the line does not fit");
	TAP_EQ_U(bad_text, 0, "overflow: fitting lines are complete");
	TAP_EQ_U(bad_past, 0, "overflow: nothing written past cap");
}

/* A whole rst event as the engine builds it, compared byte for byte. */
static void
test_event_line(void)
{
	char buf[EVENT_LINE_MAX], ts[40];
	struct json j;
	size_t n;
	static const char want[] =
		"{\"timestamp\":\"2026-11-25T12:00:00.123456+0000\",\"flow_id\":1125899906842623,"
		"\"event_type\":\"rst\",\"src_ip\":\"198.18.3.2\",\"src_port\":80,\"dest_ip\":\"2001:db8::1\","
		"\"dest_port\":40000,\"proto\":\"TCP\",\"verdict\":\"accept\",\"rst\":{\"cause\":\"refused\","
		"\"forged\":false,\"evidence\":[],\"would_drop\":false,\"seq_check\":\"exact\",\"ttl\":64,"
		"\"ipid\":0,\"df\":true,\"seq\":0,\"ack\":4294967295,\"flags\":\"RA\",\"window\":0,"
		"\"payload_len\":0,\"state\":\"syn_sent\",\"direction\":\"toclient\",\"midstream\":false,"
		"\"ttl_baseline\":64,\"idle_ms\":3,\"rtt_ms\":0.37}}\n";

	EV_FormatTime(1795608000ULL * 1000000000ULL + 123456789ULL, ts, sizeof(ts));
	JSON_Init(&j, buf, sizeof(buf));
	JSON_Str(&j, "timestamp", ts);
	JSON_U64(&j, "flow_id", (1ULL << 50) - 1);
	JSON_Str(&j, "event_type", "rst");
	JSON_Str(&j, "src_ip", "198.18.3.2");
	JSON_U64(&j, "src_port", 80);
	JSON_Str(&j, "dest_ip", "2001:db8::1");
	JSON_U64(&j, "dest_port", 40000);
	JSON_Str(&j, "proto", "TCP");
	JSON_Str(&j, "verdict", "accept");
	JSON_ObjectOpen(&j, "rst");
	JSON_Str(&j, "cause", "refused");
	JSON_Bool(&j, "forged", 0);
	JSON_ArrayOpen(&j, "evidence");
	JSON_ArrayClose(&j);
	JSON_Bool(&j, "would_drop", 0);
	JSON_Str(&j, "seq_check", "exact");
	JSON_U64(&j, "ttl", 64);
	JSON_U64(&j, "ipid", 0);
	JSON_Bool(&j, "df", 1);
	JSON_U64(&j, "seq", 0);
	JSON_U64(&j, "ack", UINT32_MAX);
	JSON_Str(&j, "flags", "RA");
	JSON_U64(&j, "window", 0);
	JSON_U64(&j, "payload_len", 0);
	JSON_Str(&j, "state", "syn_sent");
	JSON_Str(&j, "direction", "toclient");
	JSON_Bool(&j, "midstream", 0);
	JSON_U64(&j, "ttl_baseline", 64);
	JSON_U64(&j, "idle_ms", 3);
	JSON_Double(&j, "rtt_ms", 37 / 100.0, 2);
	JSON_ObjectClose(&j);
	n = JSON_Finish(&j);
	line_is(n, buf, want, "event line: exact text");
}

static void
test_format_time(void)
{
	char ts[40];

	EV_FormatTime(1795608000ULL * 1000000000ULL + 123456789ULL, ts, sizeof(ts));
	TAP_EQ_S(ts, "2026-11-25T12:00:00.123456+0000", "time: 2026-11-25T12:00:00.123456789Z");
	EV_FormatTime(0, ts, sizeof(ts));
	TAP_EQ_S(ts, "1970-01-01T00:00:00.000000+0000", "time: epoch");
	EV_FormatTime(1795608000ULL * 1000000000ULL + 999999999ULL, ts, sizeof(ts));
	TAP_EQ_S(ts, "2026-11-25T12:00:00.999999+0000", "time: microseconds truncated, no carry");
	EV_FormatTime(1709164800ULL * 1000000000ULL + 1000ULL, ts, sizeof(ts));
	TAP_EQ_S(ts, "2024-02-29T00:00:00.000001+0000", "time: leap day, 1 us");
	TAP_EQ_U(strlen(ts), 31, "time: 31 characters");
}

int
main(void)
{
	test_escape();
	test_writer();
	test_writer_invalid();
	test_overflow();
	test_event_line();
	test_format_time();
	return tap_done();
}
