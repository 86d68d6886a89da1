/* Temporary files of the unit tests: in $TMPDIR (when it fits) or /tmp, named by a stem. */
#ifndef RSTGUARD_TEST_TMPFILE_H
#define RSTGUARD_TEST_TMPFILE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A mkstemp/mkdtemp template "DIR/STEMXXXXXX" into buf. */
static void tmp_template(char *buf, size_t size, const char *stem) __attribute__((unused));
static void
tmp_template(char *buf, size_t size, const char *stem)
{
	const char *dir = getenv("TMPDIR");

	if (dir == NULL || *dir == '\0' || strlen(dir) + strlen(stem) + 8 > size)
		dir = "/tmp";
	snprintf(buf, size, "%s/%sXXXXXX", dir, stem);
}

/* A fresh temporary file holding text; its name into path. Exits 99 when it cannot be made. */
static void tmp_write(char *path, size_t size, const char *stem, const char *text)
	__attribute__((unused));
static void
tmp_write(char *path, size_t size, const char *stem, const char *text)
{
	size_t len = strlen(text);
	int fd;

	tmp_template(path, size, stem);
	if ((fd = mkstemp(path)) < 0 || write(fd, text, len) != (ssize_t)len) {
		perror("temporary file");
		exit(99);
	}
	close(fd);
}

#endif
