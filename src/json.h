/* A small JSON writer into a fixed buffer: escaping, nesting, no allocation. */
#ifndef RSTGUARD_JSON_H
#define RSTGUARD_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 8

struct json {
	char *buf;
	size_t cap;
	size_t len;
	int overflow;                      /* set when something did not fit: the line is unusable */
	int depth;
	uint8_t need_comma[JSON_MAX_DEPTH];
	char closer[JSON_MAX_DEPTH];        /* '}' or ']' for each open level */
};

/* Start writing into buf (cap bytes) with the outer object opened. */
void JSON_Init(struct json *j, char *buf, size_t cap);

/* Close the outer object and add the newline; returns the line's length, or 0 on overflow. */
size_t JSON_Finish(struct json *j);

/* Members of the current object. key is a plain ASCII literal; values are escaped. */
void JSON_Str(struct json *j, const char *key, const char *val);
void JSON_StrN(struct json *j, const char *key, const char *val, size_t n);
void JSON_U64(struct json *j, const char *key, uint64_t val);
void JSON_I64(struct json *j, const char *key, int64_t val);
void JSON_Bool(struct json *j, const char *key, int val);
void JSON_Double(struct json *j, const char *key, double val, int decimals);
/* An object member (key) or, with key NULL, an object element of the current array. */
void JSON_ObjectOpen(struct json *j, const char *key);
void JSON_ObjectClose(struct json *j);
void JSON_ArrayOpen(struct json *j, const char *key);
/* An element of the current array. */
void JSON_ArrayStr(struct json *j, const char *val);
void JSON_ArrayClose(struct json *j);

/* Escape n bytes of s as the inside of a JSON string into out (cap bytes, NUL-terminated).
 * Control characters become \uXXXX; bytes >= 0x80 that are not valid UTF-8 become \u00XX.
 * Returns the length written, or (size_t)-1 if it did not fit. */
size_t JSON_Escape(const char *s, size_t n, char *out, size_t cap);

#endif
