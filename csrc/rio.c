/*
 * rio.c -- the C core of csapp (see rio.h). Plain POSIX, no Python.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* memmem, memrchr */
#endif
#include "rio.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/epoll.h>
#endif

/* One read(2) or write(2) asks for at most this much (Linux moves at most
 * 0x7ffff000 bytes per call anyway). */
#define CSAPP_IO_MAX ((size_t)1 << 30)

int csapp_readn(int fd, void *buf, size_t n, size_t *done, int *err)
{
    unsigned char *p = buf;
    while (*done < n) {
        size_t want = n - *done;
        ssize_t got = read(fd, p + *done, want < CSAPP_IO_MAX ? want : CSAPP_IO_MAX);
        if (got < 0) {
            *err = errno;
            return -1;
        }
        if (got == 0)
            break; /* EOF */
        *done += (size_t)got;
        /* A short read: hand control back as EINTR, so the caller runs any
         * pending signal handler before the next read, which may block for
         * good (a signal that arrived with the data would else wait). */
        if (*done < n) {
            *err = EINTR;
            return -1;
        }
    }
    return 0;
}

int csapp_writen(int fd, const void *buf, size_t n, size_t *done, int *err)
{
    const unsigned char *p = buf;
    while (*done < n) {
        size_t want = n - *done;
        if (want > CSAPP_IO_MAX)
            want = CSAPP_IO_MAX;
        ssize_t put = write(fd, p + *done, want);
        if (put < 0) {
            *err = errno;
            return -1;
        }
        *done += (size_t)put;
        /* A short write: on a blocking descriptor, a signal arrived after some
         * bytes went out (write(2) then returns the count, not EINTR). Report
         * it as EINTR, so the caller runs the signal handlers before the next
         * write, which may block for good (as socket.sendall does). */
        if ((size_t)put < want && *done < n) {
            *err = EINTR;
            return -1;
        }
    }
    return 0;
}

void csapp_rio_init(csapp_rio_t *rp, int fd, size_t bufsize)
{
    rp->fd = fd;
    rp->buf = NULL;
    rp->cap = 0;
    rp->bufsize = bufsize;
    rp->start = rp->end = 0;
}

void csapp_rio_release(csapp_rio_t *rp)
{
    free(rp->buf);
    rp->buf = NULL;
    rp->cap = 0;
    rp->start = rp->end = 0;
}

/* Move the buffered bytes to the front of the buffer. */
static void compact(csapp_rio_t *rp)
{
    if (rp->start > 0) {
        size_t avail = rp->end - rp->start;
        if (avail > 0)
            memmove(rp->buf, rp->buf + rp->start, avail);
        rp->start = 0;
        rp->end = avail;
    }
}

static int resize(csapp_rio_t *rp, size_t cap, int *err)
{
    unsigned char *buf = realloc(rp->buf, cap);
    if (buf == NULL) {
        *err = ENOMEM;
        return -1;
    }
    rp->buf = buf;
    rp->cap = cap;
    return 0;
}

int csapp_rio_reserve(csapp_rio_t *rp, size_t room, int *err)
{
    /* The pending bytes go to the front first, always: the free space, and
     * so the size of the next read, then depends only on how many bytes are
     * pending (bufsize - pending), never on where they happen to sit. The
     * pure-Python twin computes the same sizes (its _refill_size). */
    compact(rp);
    if (rp->cap > rp->bufsize && room <= rp->bufsize && rp->end <= rp->bufsize - room) {
        /* Grown for a large read that then failed (EAGAIN, a signal): give it
         * back first, so the next read asks for bufsize - pending, as after a
         * read that succeeded. A failed shrink keeps the larger buffer. */
        int ignored;
        (void)resize(rp, rp->bufsize, &ignored);
    }
    if (rp->cap - rp->end >= room && rp->cap > 0)
        return 0;
    size_t need = rp->end + room;
    if (need < room) { /* overflow */
        *err = ENOMEM;
        return -1;
    }
    size_t cap = rp->cap > rp->bufsize ? rp->cap : rp->bufsize;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    return resize(rp, cap, err);
}

ssize_t csapp_rio_fill(csapp_rio_t *rp, size_t want, int *err)
{
    size_t room = rp->cap - rp->end;
    if (want > room)
        want = room;
    if (want > CSAPP_IO_MAX)
        want = CSAPP_IO_MAX;
    ssize_t got = read(rp->fd, rp->buf + rp->end, want);
    if (got < 0) {
        *err = errno;
        return -1;
    }
    rp->end += (size_t)got;
    return got;
}

void csapp_rio_shrink(csapp_rio_t *rp)
{
    if (rp->cap > rp->bufsize && rp->end - rp->start <= rp->bufsize) {
        /* A failed shrink keeps the larger buffer, which is still correct. */
        int err;
        compact(rp);
        (void)resize(rp, rp->bufsize, &err);
    }
}

int csapp_rio_unread(csapp_rio_t *rp, const void *data, size_t n, int *err)
{
    if (n == 0)
        return 0;
    size_t avail = rp->end - rp->start;
    if (rp->start < n) {
        /* Not enough room in front: make the buffer hold both, then shift. */
        compact(rp);
        if (rp->cap - avail < n) {
            size_t cap = avail + n;
            if (cap < n) {
                *err = ENOMEM;
                return -1;
            }
            if (cap < rp->bufsize)
                cap = rp->bufsize; /* never below the nominal size */
            if (resize(rp, cap, err) < 0)
                return -1;
        }
        memmove(rp->buf + n, rp->buf, avail);
        rp->start = n;
        rp->end = n + avail;
    }
    rp->start -= n;
    memcpy(rp->buf + rp->start, data, n);
    return 0;
}

/* Bytes up to and including the last '\n' of buf[0:n], or 0 if there is none.
 * Searched from the end (memrchr), so a buffer of whole lines costs one look
 * at its last byte, not a scan of every line. */
static size_t through_last_newline(const unsigned char *buf, size_t n)
{
    if (n == 0)
        return 0;
    if (buf[n - 1] == '\n')
        return n;
#if defined(__APPLE__)
    size_t cut = 0;
    const unsigned char *nl;
    while (cut < n && (nl = memchr(buf + cut, '\n', n - cut)) != NULL)
        cut = (size_t)(nl - buf) + 1;
    return cut;
#else
    const unsigned char *nl = memrchr(buf, '\n', n - 1);
    return nl == NULL ? 0 : (size_t)(nl - buf) + 1;
#endif
}

int csapp_rio_echo(csapp_rio_t *rp, int out_fd, size_t limit, int once, int pause,
                   size_t *echoed, int *err)
{
    int at_eof = 0;
    int busy = 0; /* a read or write went through in this call */
    if (limit == 0)
        limit = 1;
    for (;;) {
        size_t avail = rp->end - rp->start;
        const unsigned char *from = csapp_rio_data(rp);
        size_t n = avail ? through_last_newline(from, avail) : 0;
        if (n == 0 && avail > 0 && (avail >= limit || at_eof))
            n = avail; /* a piece of a long line, or the last line without '\n' */
        if (n > 0) {
            ssize_t put = write(out_fd, from, n < CSAPP_IO_MAX ? n : CSAPP_IO_MAX);
            if (put < 0) {
                *err = errno;
                return -1;
            }
            csapp_rio_consume(rp, (size_t)put);
            *echoed += (size_t)put;
            if ((size_t)put < n) {
                /* A short write: let the caller run its signal handlers. */
                *err = EINTR;
                return -1;
            }
            if (once && !at_eof)
                return 1;
            busy = 1;
            continue;
        }
        if (at_eof)
            return 0;
        if (pause && busy) {
            /* The next read may block for good: hand control back as EINTR
             * first, so a signal that arrived during the last read or write
             * (which then completed, without EINTR) gets its handler run. */
            *err = EINTR;
            return -1;
        }
        if (csapp_rio_reserve(rp, 1, err) < 0)
            return -1;
        ssize_t got = csapp_rio_fill(rp, rp->bufsize, err);
        if (got < 0)
            return -1;
        at_eof = got == 0;
        busy = 1;
    }
}

/* EAGAIN, EWOULDBLOCK or EINTR: the descriptor is not ready now; try later. */
static int not_now(int err)
{
    return err == EINTR || csapp_would_block(err);
}

/* Append data[0:n] to the buffered bytes. 0, or -1 with *err = ENOMEM. */
static int rio_append(csapp_rio_t *rp, const void *data, size_t n, int *err)
{
    if (n == 0)
        return 0;
    if (csapp_rio_reserve(rp, n, err) < 0)
        return -1;
    memcpy(rp->buf + rp->end, data, n);
    rp->end += n;
    return 0;
}

/* One write of a[0:k] followed by b[0:m]: write(2) when one of them is
 * empty, writev(2) otherwise. The count, or -1 with errno set. */
static ssize_t write_two(int fd, const unsigned char *a, size_t k, const unsigned char *b,
                         size_t m)
{
    if (k == 0)
        return write(fd, b, m < CSAPP_IO_MAX ? m : CSAPP_IO_MAX);
    if (m == 0)
        return write(fd, a, k < CSAPP_IO_MAX ? k : CSAPP_IO_MAX);
    struct iovec iov[2];
    iov[0].iov_base = (void *)a;
    iov[0].iov_len = k;
    iov[1].iov_base = (void *)b;
    iov[1].iov_len = m;
    return writev(fd, iov, 2);
}

/* The end of a turn: a reader that holds nothing gives its buffer back. */
static int turn_end(csapp_rio_t *rp, int state)
{
    if (rp->buf != NULL && rp->start == rp->end)
        csapp_rio_release(rp);
    return state;
}

int csapp_rio_echo_turn(csapp_rio_t *rp, int writable, unsigned char *scratch,
                        size_t scratch_size, size_t limit, size_t high_water, size_t *echoed,
                        size_t *received, int *err)
{
    int drained = 0;
    ssize_t got, put;
    size_t held = csapp_rio_buffered(rp);
    size_t held_at_start = held;
    if (limit == 0)
        limit = 1;
    if (scratch_size > CSAPP_IO_MAX)
        scratch_size = CSAPP_IO_MAX;

    /* 1. Output that waited from an earlier turn goes first. */
    if (held > 0) {
        const unsigned char *from = csapp_rio_data(rp);
        size_t cut = csapp_echo_cut(from, held, 0, limit);
        /* After the last newline, limit bytes or more are a long line's piece:
         * they go too. Writable, all of it goes: the rest of a piece a blocked
         * turn cut is owed, though the rule alone would wait for more. */
        if (writable || held - cut >= limit)
            cut = held;
        if (cut > 0) {
            put = write(rp->fd, from, cut < CSAPP_IO_MAX ? cut : CSAPP_IO_MAX);
            if (put < 0) {
                if (!not_now(errno)) {
                    *err = errno;
                    return turn_end(rp, -1);
                }
                put = 0;
            }
            csapp_rio_consume(rp, (size_t)put);
            *echoed += (size_t)put;
            if ((size_t)put < cut) {
                /* The socket is full: read on only below the high-water mark. */
                int state = CSAPP_TURN_BLOCKED;
                if (csapp_rio_buffered(rp) < high_water) {
                    got = read(rp->fd, scratch, scratch_size);
                    if (got < 0 && !not_now(errno)) {
                        *err = errno;
                        return turn_end(rp, -1);
                    }
                    if (got == 0)
                        state = CSAPP_TURN_BLOCKED_EOF;
                    if (got > 0) {
                        *received += (size_t)got;
                        if (rio_append(rp, scratch, (size_t)got, err) < 0)
                            return turn_end(rp, -1);
                    }
                }
                return turn_end(rp, state);
            }
            drained = 1;
            held = csapp_rio_buffered(rp);
        }
    }

    /* 2. One read. */
    got = read(rp->fd, scratch, scratch_size);
    if (got < 0) {
        if (!not_now(errno)) {
            *err = errno;
            return turn_end(rp, -1);
        }
        return turn_end(rp, drained ? CSAPP_TURN_DRAINED : CSAPP_TURN_IDLE);
    }
    *received += (size_t)got;
    int at_eof = got == 0;
    size_t fresh = (size_t)got;

    /* 3. The held partial line (no '\n' in it, shorter than limit) and the
     * new bytes, cut by the echo rule, in one write. */
    size_t cut = through_last_newline(scratch, fresh);
    if (cut > 0)
        cut += held;
    if (at_eof || held + fresh - cut >= limit)
        cut = held + fresh; /* everything at EOF; a long line's piece goes too */
    size_t written = 0;
    int write_err = 0;
    if (cut > 0) {
        put = write_two(rp->fd, csapp_rio_data(rp), held, scratch, cut - held);
        if (put < 0) {
            if (!not_now(errno))
                write_err = errno;
            put = 0;
        }
        written = (size_t)put;
    }
    *echoed += written;
    /* What the socket did not take stays, in order. */
    if (written < held) {
        csapp_rio_consume(rp, written);
        if (rio_append(rp, scratch, fresh, err) < 0)
            return turn_end(rp, -1);
    } else {
        csapp_rio_consume(rp, held);
        if (rio_append(rp, scratch + (written - held), fresh - (written - held), err) < 0)
            return turn_end(rp, -1);
    }
    if (write_err != 0) {
        *err = write_err;
        return turn_end(rp, -1);
    }
    if (written < cut)
        return turn_end(rp, at_eof ? CSAPP_TURN_BLOCKED_EOF : CSAPP_TURN_BLOCKED);
    if (at_eof)
        return turn_end(rp, CSAPP_TURN_CLOSED);
    /* DRAINED also when step 3 sent all the turn began holding: the caller
     * may be waiting for EPOLLOUT (a blocked turn), and must stop. */
    if (held_at_start > 0 && csapp_rio_buffered(rp) == 0)
        drained = 1;
    return turn_end(rp, drained ? CSAPP_TURN_DRAINED : CSAPP_TURN_IDLE);
}

int csapp_epoll_wait(int epfd, int *fds, unsigned *masks, int max, int timeout_ms, int *err)
{
#ifdef __linux__
    struct epoll_event events[CSAPP_READY_MAX];
    if (max > CSAPP_READY_MAX)
        max = CSAPP_READY_MAX;
    if (max < 1)
        max = 1;
    int n = epoll_wait(epfd, events, max, timeout_ms);
    if (n < 0) {
        *err = errno;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        fds[i] = events[i].data.fd;
        masks[i] = events[i].events;
    }
    return n;
#else
    (void)epfd, (void)fds, (void)masks, (void)max, (void)timeout_ms;
    *err = ENOSYS;
    return -1;
#endif
}

ssize_t csapp_find(const void *buf, size_t n, const void *sep, size_t seplen)
{
    const unsigned char *at;
    if (seplen == 0 || seplen > n)
        return -1;
    if (seplen == 1)
        at = memchr(buf, *(const unsigned char *)sep, n);
    else
        at = memmem(buf, n, sep, seplen);
    return at == NULL ? -1 : (ssize_t)(at - (const unsigned char *)buf);
}

size_t csapp_echo_cut(const void *buf, size_t n, int at_eof, size_t limit)
{
    size_t cut = through_last_newline(buf, n);
    if (cut == 0 && (at_eof || n >= limit))
        return n;
    return cut;
}
