/*
 * lines_byte.c -- the lecture's rio_readlineb: a buffered rio_read and a
 * line loop that asks it for one byte at a time (CSAPP, section 10.5).
 * Reads standard input to EOF; prints "<lines> <bytes> <seconds>".
 * Usage: lines_byte [maxlen]   (default 65536)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RIO_BUFSIZE 8192

typedef struct {
    int fd;
    ssize_t cnt;
    char *bufptr;
    char buf[RIO_BUFSIZE];
} rio_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Up to n bytes from the buffer, refilling it with one read when empty. */
static ssize_t rio_read(rio_t *rp, char *usrbuf, size_t n)
{
    while (rp->cnt <= 0) {
        rp->cnt = read(rp->fd, rp->buf, sizeof rp->buf);
        if (rp->cnt < 0) {
            if (errno != EINTR)
                return -1;
        } else if (rp->cnt == 0) {
            return 0;
        } else {
            rp->bufptr = rp->buf;
        }
    }
    size_t cnt = (size_t)rp->cnt < n ? (size_t)rp->cnt : n;
    memcpy(usrbuf, rp->bufptr, cnt);
    rp->bufptr += cnt;
    rp->cnt -= cnt;
    return (ssize_t)cnt;
}

/* The book's loop: one rio_read call per byte, up to maxlen-1 bytes. */
static ssize_t rio_readlineb(rio_t *rp, char *usrbuf, size_t maxlen)
{
    size_t n;
    char c, *bufp = usrbuf;
    for (n = 1; n < maxlen; n++) {
        ssize_t rc = rio_read(rp, &c, 1);
        if (rc == 1) {
            *bufp++ = c;
            if (c == '\n') {
                n++;
                break;
            }
        } else if (rc == 0) {
            if (n == 1)
                return 0;
            break;
        } else {
            return -1;
        }
    }
    *bufp = 0;
    return (ssize_t)(n - 1);
}

int main(int argc, char **argv)
{
    size_t maxlen = argc > 1 ? strtoul(argv[1], NULL, 10) : 65536;
    char *line = malloc(maxlen);
    static rio_t rio;
    size_t lines = 0, bytes = 0;
    ssize_t n;
    rio.fd = 0;
    double t0 = now();
    while ((n = rio_readlineb(&rio, line, maxlen)) > 0) {
        lines++;
        bytes += (size_t)n;
    }
    if (n < 0) {
        perror("read");
        return 1;
    }
    printf("%zu %zu %.9f\n", lines, bytes, now() - t0);
    free(line);
    return 0;
}
