/*
 * lines_floor.c -- the floor for reading lines: an 8 KiB buffer and memchr,
 * each line copied out whole (as a caller of rio_readlineb would get it).
 * Reads standard input to EOF; prints "<lines> <bytes> <seconds>".
 * Usage: lines_floor [maxlen]   (default 65536; a longer line comes in pieces)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t maxlen = argc > 1 ? strtoul(argv[1], NULL, 10) : 65536;
    static char buf[8192];
    char *line = malloc(maxlen);
    size_t start = 0, end = 0, have = 0, lines = 0, bytes = 0;
    double t0 = now();
    for (;;) {
        if (start == end) {
            ssize_t n = read(0, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                perror("read");
                return 1;
            }
            if (n == 0)
                break;
            start = 0;
            end = (size_t)n;
        }
        size_t room = maxlen - 1 - have;
        size_t span = end - start < room ? end - start : room;
        char *nl = memchr(buf + start, '\n', span);
        size_t take = nl ? (size_t)(nl - (buf + start)) + 1 : span;
        memcpy(line + have, buf + start, take);
        have += take;
        start += take;
        if (nl || have == maxlen - 1) {
            lines++;
            bytes += have;
            have = 0;
        }
    }
    if (have) {
        lines++;
        bytes += have;
    }
    printf("%zu %zu %.9f\n", lines, bytes, now() - t0);
    free(line);
    return 0;
}
