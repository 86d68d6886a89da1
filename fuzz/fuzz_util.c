/* Helpers of the fuzz targets: temporary files in $TMPDIR (when it fits) or /tmp. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

int
fuzz_tmpfile(char *path, size_t pathlen, const char *stem, const void *data, size_t size)
{
	const char *dir = getenv("TMPDIR");
	const char *p = data;
	int fd;

	if (dir == NULL || *dir == '\0' || strlen(dir) + strlen(stem) + 8 > pathlen)
		dir = "/tmp";
	snprintf(path, pathlen, "%s/%sXXXXXX", dir, stem);
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	while (size > 0) {
		ssize_t n = write(fd, p, size);

		if (n <= 0) {
			close(fd);
			unlink(path);
			return -1;
		}
		p += n;
		size -= (size_t)n;
	}
	close(fd);
	return 0;
}
