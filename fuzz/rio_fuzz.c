/*
 * rio_fuzz.c -- a libFuzzer harness for the C core (csrc/rio.c).
 *
 * Build (scripts/fuzz.sh does it): rio.c goes into an object of its own with
 *
 *   -Dread=csapp_fake_read -Dwrite=csapp_fake_write -Drealloc=csapp_fake_realloc
 *   -U_FORTIFY_SOURCE
 *
 * so its two system calls land in the fake descriptor defined here, and its
 * one allocator call in a fake that can fail, while libFuzzer, the
 * sanitizers and this file keep the real ones. The macros are safe with what
 * rio.c includes: they only rename glibc's prototypes of read() and write()
 * in <unistd.h> and of realloc() in <stdlib.h> (no struct there has a member
 * of those names). Fortified builds are the one trap: glibc's inline read()
 * wrapper would call the real read through an asm alias the macro cannot
 * reach, so _FORTIFY_SOURCE is turned off; fuzz.sh checks with nm that
 * rio.o has no undefined read, write or realloc left.
 *
 * Input: byte 0 picks the mode, bytes 1-2 the length of the stream the fake
 * descriptor delivers, then the stream; the rest are control bytes that pick
 * the operations and, for each read()/write(), what the descriptor does: a
 * full or a short transfer, EINTR, EAGAIN, an early EOF or a hard error.
 * After MAX_FAULTS calls, or once the control bytes run out, it behaves, so
 * every run ends.
 *
 *   mode 0: csapp_readn / csapp_writen, resumed after every -1 as the
 *           Cython layer does, against the stream and a log of the writes.
 *   mode 1: the buffered reader (reserve, fill, line_length, consume,
 *           unread, shrink, release) against a model of what is buffered,
 *           with allocations that may fail (ENOMEM must lose nothing);
 *           csapp_find and csapp_echo_cut against naive versions.
 *   mode 2: csapp_rio_echo with fake reads and writes, once and pause.
 *
 * A mismatch prints what differs and aborts, which libFuzzer reports as a
 * crash and saves the input.
 */
#include "rio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define HAVE_ASAN 1
#endif
#endif

#define FAKE_IN 100       /* the descriptor the readers read */
#define FAKE_OUT 101      /* the one writen and echo write to */
#define MAX_FAULTS 600    /* fake calls that may misbehave; later ones behave */
#define MAX_OPS 300       /* operations per input */
#define MAX_ECHO_CALLS 100000
#define FAKE_MEM_MAX ((size_t)1 << 24) /* larger allocations fail, as malloc would */

/* ------------------------------------------------------------ reporting */

static void fail(const char *fmt, ...)
{
    va_list ap;
    fputs("rio_fuzz: MISMATCH: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

#define CHECK(cond, ...)       \
    do {                       \
        if (!(cond))           \
            fail(__VA_ARGS__); \
    } while (0)

/* ------------------------------------------------------- control bytes */

static const uint8_t *ctl_p;
static size_t ctl_n, ctl_pos;

static int ctl_left(void)
{
    return ctl_pos < ctl_n;
}

/* The next control byte; 0 once they run out (0 means "behave"). */
static uint8_t ctl_byte(void)
{
    return ctl_pos < ctl_n ? ctl_p[ctl_pos++] : 0;
}

/* A size in 0..max: one byte for 0..127, two for up to 32767, so small
 * sizes are cheap for the fuzzer to find and large ones reachable. */
static size_t ctl_size(size_t max)
{
    size_t v = ctl_byte();
    if (v & 0x80)
        v = ((v & 0x7f) << 8) | ctl_byte();
    return v % (max + 1);
}

/* ------------------------------------------------------ growable bytes */

typedef struct {
    unsigned char *p;
    size_t len, cap;
} bytes_t;

static void bytes_room(bytes_t *b, size_t more)
{
    if (b->len + more > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + more)
            cap *= 2;
        b->p = realloc(b->p, cap);
        CHECK(b->p != NULL, "harness out of memory");
        b->cap = cap;
    }
}

static void bytes_append(bytes_t *b, const void *data, size_t n)
{
    bytes_room(b, n);
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void bytes_prepend(bytes_t *b, const void *data, size_t n)
{
    bytes_room(b, n);
    if (b->len)
        memmove(b->p + n, b->p, b->len);
    if (n)
        memcpy(b->p, data, n);
    b->len += n;
}

static void bytes_drop(bytes_t *b, size_t n)
{
    CHECK(n <= b->len, "harness: drop %zu of %zu", n, b->len);
    if (n < b->len)
        memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static void bytes_free(bytes_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* memcmp that allows a NULL pointer with a length of 0. */
static int same(const void *a, const void *b, size_t n)
{
    return n == 0 || memcmp(a, b, n) == 0;
}

/* An exact-size copy, so ASan sees a read one byte past it. */
static unsigned char *exact_copy(const void *data, size_t n)
{
    unsigned char *p = malloc(n ? n : 1);
    CHECK(p != NULL, "harness out of memory");
    if (n)
        memcpy(p, data, n);
    return p;
}

/* --------------------------------------------------- the echo framing rule */

/* csapp._shared.echo_cut, restated: through the last '\n'; with none, all
 * of it at EOF or once limit bytes wait. */
static size_t model_echo_cut(const unsigned char *p, size_t n, int at_eof, size_t limit)
{
    size_t cut = 0;
    for (size_t i = n; i > 0; i--) {
        if (p[i - 1] == '\n') {
            cut = i;
            break;
        }
    }
    if (cut == 0 && (at_eof || n >= limit))
        return n;
    return cut;
}

/* ----------------------------------------------- the fake descriptor layer */

enum { ACT_NORMAL, ACT_EINTR, ACT_EAGAIN, ACT_EOF, ACT_SHORT, ACT_ERROR };

static struct {
    const uint8_t *stream;
    size_t len;
    size_t pos;          /* stream[0:pos] has been delivered */
    int early_eof;       /* a read returned 0 before the stream's end */
    bytes_t out;         /* every byte written */
    unsigned calls;
    ssize_t last_ret;    /* the last call: its result, */
    int last_errno;      /* errno when it failed, */
    size_t last_count;   /* the count asked for */
    int alloc_faults;    /* may the fake realloc fail (mode 1 only)? */
    unsigned alloc_failed; /* allocations that failed */
} fk;

/* The mode-2 watch over csapp_rio_echo, checked inside each fake call. */
static struct {
    int active;
    const csapp_rio_t *rp;
    bytes_t *model;      /* what should be buffered: delivered, not written */
    size_t limit;        /* as the call uses it (0 means 1) */
    int once, pause;
    int busy;            /* a read, or a whole write, went through in this call */
    int eof;             /* a read returned 0 in this call */
    int must_return;     /* once: a whole write not at EOF; the call must end */
    unsigned calls;      /* fake calls in this call */
    int last_short;      /* the last call was a short write */
    int last_failed;     /* the last call failed */
} ew;

static int pick_action(void)
{
    if (fk.calls++ >= MAX_FAULTS || !ctl_left())
        return ACT_NORMAL;
    switch (ctl_byte() % 16) {
    case 0:
    case 1:
        return ACT_EINTR;
    case 2:
        return ACT_EAGAIN;
    case 3:
        return ACT_EOF;
    case 4:
    case 5:
    case 6:
        return ACT_SHORT;
    case 7:
        return ACT_ERROR;
    default:
        return ACT_NORMAL;
    }
}

/* The caller promises count bytes at buf: under ASan, prove it. */
static void check_region(const void *buf, size_t count, const char *what)
{
#ifdef HAVE_ASAN
    if (count > 0 && __asan_region_is_poisoned((void *)buf, count) != NULL)
        fail("%s(%zu) on a buffer that does not have %zu bytes", what, count, count);
#else
    (void)buf, (void)count, (void)what;
#endif
}

static ssize_t fake_fail(int err)
{
    ew.last_failed = ew.active;
    fk.last_ret = -1;
    fk.last_errno = err;
    errno = err;
    return -1;
}

/* A failed call or a short write must end the csapp_rio_echo call. */
static void echo_watch_any(const char *what)
{
    CHECK(!ew.last_failed, "csapp_rio_echo: a %s after a failed call, not returning -1", what);
    CHECK(!ew.last_short, "csapp_rio_echo: a %s after a short write, not returning -1", what);
}

static void echo_watch_read(const void *buf, size_t count)
{
    const csapp_rio_t *rp = ew.rp;
    echo_watch_any("read");
    CHECK(!ew.must_return, "csapp_rio_echo(once): a read after the write that should return 1");
    CHECK(!(ew.pause && ew.busy), "csapp_rio_echo(pause): a read after a read or write");
    CHECK(!ew.eof, "csapp_rio_echo: a read after EOF in the same call");
    size_t due = model_echo_cut(ew.model->p, ew.model->len, 0, ew.limit);
    CHECK(due == 0, "csapp_rio_echo: a read while %zu bytes were due to be written", due);
    CHECK(rp->start == 0 && buf == rp->buf + rp->end,
          "csapp_rio_echo: a read not after the compacted bytes (start %zu end %zu)",
          rp->start, rp->end);
    size_t room = rp->cap - rp->end;
    size_t expect = room < rp->bufsize ? room : rp->bufsize;
    CHECK(count == expect, "csapp_rio_echo: a read of %zu, not %zu (cap %zu, %zu pending)",
          count, expect, rp->cap, rp->end);
}

ssize_t csapp_fake_read(int fd, void *buf, size_t count);
ssize_t csapp_fake_write(int fd, const void *buf, size_t count);
void *csapp_fake_realloc(void *p, size_t size);

void *csapp_fake_realloc(void *p, size_t size)
{
    if (size > FAKE_MEM_MAX || (fk.alloc_faults && ctl_left() && ctl_byte() % 8 == 0)) {
        fk.alloc_failed++;
        return NULL;
    }
    return realloc(p, size);
}

ssize_t csapp_fake_read(int fd, void *buf, size_t count)
{
    CHECK(fd == FAKE_IN, "read(%d): not the fake input descriptor", fd);
    check_region(buf, count, "read");
    if (ew.active) {
        echo_watch_read(buf, count);
        ew.calls++;
    }
    fk.last_count = count;
    size_t rest = fk.len - fk.pos;
    size_t k = count < rest ? count : rest;
    switch (pick_action()) {
    case ACT_EINTR:
        return fake_fail(EINTR);
    case ACT_EAGAIN:
        return fake_fail(EAGAIN);
    case ACT_ERROR:
        return fake_fail(ECONNRESET);
    case ACT_EOF:
        if (k > 0)
            fk.early_eof = 1;
        k = 0;
        break;
    case ACT_SHORT:
        if (k > 1)
            k = 1 + ctl_byte() % (k - 1);
        break;
    default:
        break;
    }
    if (k)
        memcpy(buf, fk.stream + fk.pos, k);
    if (ew.active) {
        bytes_append(ew.model, fk.stream + fk.pos, k);
        ew.busy = 1;
        if (k == 0)
            ew.eof = 1;
    }
    fk.pos += k;
    fk.last_ret = (ssize_t)k;
    return (ssize_t)k;
}

static void echo_watch_write(const void *buf, size_t count)
{
    const csapp_rio_t *rp = ew.rp;
    echo_watch_any("write");
    CHECK(!ew.must_return, "csapp_rio_echo(once): a write after the write that should return 1");
    CHECK(buf == rp->buf + rp->start, "csapp_rio_echo: a write not from the buffered bytes");
    CHECK(count <= ew.model->len && same(buf, ew.model->p, count),
          "csapp_rio_echo: a write of %zu bytes that are not the %zu buffered ones", count,
          ew.model->len);
    size_t due = model_echo_cut(ew.model->p, ew.model->len, ew.eof, ew.limit);
    CHECK(count == due, "csapp_rio_echo: a write of %zu bytes, the framing rule says %zu "
          "(%zu buffered, eof %d, limit %zu)", count, due, ew.model->len, ew.eof, ew.limit);
}

ssize_t csapp_fake_write(int fd, const void *buf, size_t count)
{
    CHECK(fd == FAKE_OUT, "write(%d): not the fake output descriptor", fd);
    check_region(buf, count, "write");
    if (ew.active) {
        echo_watch_write(buf, count);
        ew.calls++;
    }
    fk.last_count = count;
    size_t k = count;
    switch (pick_action()) {
    case ACT_EINTR:
        return fake_fail(EINTR);
    case ACT_EAGAIN:
        return fake_fail(EAGAIN);
    case ACT_ERROR:
        return fake_fail(EPIPE);
    case ACT_EOF: /* a write that takes nothing: odd, but the count is 0 */
        k = 0;
        break;
    case ACT_SHORT:
        k = count ? ctl_byte() % count : 0;
        break;
    default:
        break;
    }
    bytes_append(&fk.out, buf, k);
    if (ew.active) {
        bytes_drop(ew.model, k);
        if (k < count) {
            ew.last_short = 1;
        } else {
            ew.busy = 1;
            if (ew.once && !ew.eof)
                ew.must_return = 1;
        }
    }
    fk.last_ret = (ssize_t)k;
    return (ssize_t)k;
}

/* ------------------------------------------------ mode 0: readn, writen */

/* One csapp_readn(n), resumed after EINTR and EAGAIN (as rio_readinto is:
 * the same *done again); a hard error ends it, as the caller raises. */
static void check_readn(size_t n)
{
    unsigned char *buf = malloc(n ? n : 1);
    CHECK(buf != NULL, "harness out of memory");
    size_t done = 0, pos0 = fk.pos;
    for (;;) {
        size_t before = done;
        unsigned calls0 = fk.calls;
        int err = 0;
        int rc = csapp_readn(FAKE_IN, buf, n, &done, &err);
        unsigned made = fk.calls - calls0;
        CHECK(done >= before && done <= n, "csapp_readn: *done went from %zu to %zu (n %zu)",
              before, done, n);
        CHECK(fk.pos - pos0 == done, "csapp_readn: *done is %zu but %zu bytes were read",
              done, fk.pos - pos0);
        /* Every read either finishes the call or makes it return (short
         * reads come back as EINTR), so a call makes exactly one read. */
        CHECK(made == (before < n ? 1u : 0u), "csapp_readn: %u reads in one call, %zu of %zu done",
              made, before, n);
        if (rc == 0) {
            CHECK(done == n || fk.last_ret == 0,
                  "csapp_readn: returned 0 with %zu of %zu bytes, not at EOF", done, n);
            break;
        }
        CHECK(rc == -1, "csapp_readn returned %d", rc);
        if (fk.last_ret < 0)
            CHECK(err == fk.last_errno, "csapp_readn: *err %d, the read failed with %d", err,
                  fk.last_errno);
        else
            CHECK(err == EINTR && fk.last_ret > 0 && done < n,
                  "csapp_readn: -1 with *err %d after a read of %zd (%zu of %zu)", err,
                  fk.last_ret, done, n);
        if (err != EINTR && !csapp_would_block(err))
            break;
    }
    CHECK(same(buf, fk.stream + pos0, done),
          "csapp_readn: the %zu bytes are not the stream's at %zu", done, pos0);
    free(buf);
}

static void check_writen(size_t n, uint8_t seed)
{
    unsigned char *data = malloc(n ? n : 1);
    CHECK(data != NULL, "harness out of memory");
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(seed + i * 131u + (i >> 8));
    size_t done = 0;
    fk.out.len = 0;
    for (;;) {
        size_t before = done;
        unsigned calls0 = fk.calls;
        int err = 0;
        int rc = csapp_writen(FAKE_OUT, data, n, &done, &err);
        unsigned made = fk.calls - calls0;
        CHECK(done >= before && done <= n, "csapp_writen: *done went from %zu to %zu (n %zu)",
              before, done, n);
        CHECK(fk.out.len == done, "csapp_writen: *done is %zu but %zu bytes were written", done,
              fk.out.len);
        CHECK(made == (before < n ? 1u : 0u), "csapp_writen: %u writes in one call", made);
        if (rc == 0) {
            CHECK(done == n, "csapp_writen: returned 0 with %zu of %zu written", done, n);
            break;
        }
        CHECK(rc == -1, "csapp_writen returned %d", rc);
        if (fk.last_ret < 0)
            CHECK(err == fk.last_errno, "csapp_writen: *err %d, the write failed with %d", err,
                  fk.last_errno);
        else
            CHECK(err == EINTR && (size_t)fk.last_ret < fk.last_count && done < n,
                  "csapp_writen: -1 with *err %d after a write of %zd of %zu", err,
                  fk.last_ret, fk.last_count);
        if (err != EINTR && !csapp_would_block(err))
            break;
    }
    CHECK(same(fk.out.p, data, done), "csapp_writen: the bytes written are not the data");
    free(data);
}

static void run_unbuffered(void)
{
    for (int op = 0; op < MAX_OPS && ctl_left(); op++) {
        uint8_t c = ctl_byte();
        size_t n = ctl_size(4096);
        if (c & 1)
            check_readn(n);
        else
            check_writen(n, c);
    }
}

/* --------------------------------------------- mode 1: the buffered reader */

static void check_reader(const csapp_rio_t *rp, const bytes_t *model, size_t bufsize,
                         const char *after)
{
    CHECK(rp->fd == FAKE_IN && rp->bufsize == bufsize, "after %s: fd or bufsize changed", after);
    CHECK(rp->start <= rp->end && rp->end <= rp->cap,
          "after %s: start %zu end %zu cap %zu", after, rp->start, rp->end, rp->cap);
    CHECK((rp->cap == 0) == (rp->buf == NULL), "after %s: cap %zu with buf %p", after, rp->cap,
          (void *)rp->buf);
    CHECK(csapp_rio_buffered(rp) == model->len, "after %s: %zu buffered, the model has %zu",
          after, csapp_rio_buffered(rp), model->len);
    CHECK(model->len == 0 || same(rp->buf + rp->start, model->p, model->len),
          "after %s: the buffered bytes are not the model's", after);
}

static size_t model_line_length(const bytes_t *m, size_t limit)
{
    size_t span = m->len < limit ? m->len : limit;
    for (size_t i = 0; i < span; i++)
        if (m->p[i] == '\n')
            return i + 1;
    return m->len >= limit ? limit : 0;
}

/* The capacity csapp_rio_reserve must end with (rio.h: compact; a buffer
 * grown past bufsize goes back to bufsize when pending + room fit in it,
 * unless that realloc failed; then grow to bufsize, then doubling, only when
 * that is not enough). */
static size_t expect_reserve_cap(size_t cap, size_t avail, size_t room, size_t bufsize,
                                 int shrink_failed)
{
    if (cap > bufsize && room <= bufsize && avail <= bufsize - room && !shrink_failed)
        return bufsize;
    if (cap > 0 && cap - avail >= room)
        return cap;
    size_t c = cap > bufsize ? cap : bufsize;
    while (c < avail + room)
        c *= 2;
    return c;
}

/* 0, or -1 when it failed (for want of memory, and nothing changed). */
static int do_reserve(csapp_rio_t *rp, bytes_t *model, size_t room)
{
    size_t cap = rp->cap;
    unsigned failed = fk.alloc_failed;
    int err = 0;
    int rc = csapp_rio_reserve(rp, room, &err);
    CHECK(rp->start == 0, "csapp_rio_reserve: the bytes were not moved to the front");
    if (rc < 0) {
        CHECK(rc == -1 && err == ENOMEM, "csapp_rio_reserve(%zu): %d, *err %d", room, rc, err);
        CHECK(fk.alloc_failed > failed || model->len + room < room,
              "csapp_rio_reserve(%zu): ENOMEM, but no allocation failed", room);
        CHECK(rp->cap == cap, "csapp_rio_reserve: cap %zu after ENOMEM, was %zu", rp->cap, cap);
        return -1;
    }
    CHECK(rc == 0, "csapp_rio_reserve(%zu) returned %d", room, rc);
    int shrink_failed = fk.alloc_failed > failed; /* the only realloc a success can skip */
    size_t expect = expect_reserve_cap(cap, model->len, room, rp->bufsize, shrink_failed);
    CHECK(rp->cap - rp->end >= room, "csapp_rio_reserve(%zu): only %zu free", room,
          rp->cap - rp->end);
    CHECK(rp->cap == expect, "csapp_rio_reserve(%zu): cap %zu, the rule says %zu", room,
          rp->cap, expect);
    return 0;
}

static void do_fill(csapp_rio_t *rp, bytes_t *model, size_t want)
{
    size_t room = rp->cap - rp->end;
    size_t pos0 = fk.pos;
    unsigned calls0 = fk.calls;
    int err = 0;
    ssize_t got = csapp_rio_fill(rp, want, &err);
    CHECK(fk.calls - calls0 == 1, "csapp_rio_fill: %u reads", fk.calls - calls0);
    size_t expect = want < room ? want : room;
    CHECK(fk.last_count == expect, "csapp_rio_fill(%zu): asked for %zu, not %zu (room %zu)",
          want, fk.last_count, expect, room);
    if (fk.last_ret < 0) {
        CHECK(got == -1 && err == fk.last_errno, "csapp_rio_fill: %zd, *err %d; the read "
              "failed with %d", got, err, fk.last_errno);
        return;
    }
    CHECK(got == fk.last_ret, "csapp_rio_fill returned %zd, the read %zd", got, fk.last_ret);
    bytes_append(model, fk.stream + pos0, (size_t)got);
}

static void do_unread(csapp_rio_t *rp, bytes_t *model, size_t n)
{
    unsigned char *data = malloc(n ? n : 1);
    CHECK(data != NULL, "harness out of memory");
    for (size_t i = 0; i < n; i++)
        data[i] = ctl_left() ? ctl_byte() : (unsigned char)('a' + i % 26);
    size_t avail = model->len;
    size_t expect = rp->cap;
    if (n > 0 && rp->start < n && rp->cap - avail < n)
        expect = avail + n > rp->bufsize ? avail + n : rp->bufsize;
    size_t cap = rp->cap;
    unsigned failed = fk.alloc_failed;
    int err = 0;
    int rc = csapp_rio_unread(rp, data, n, &err);
    if (rc < 0) {
        CHECK(rc == -1 && err == ENOMEM && fk.alloc_failed > failed,
              "csapp_rio_unread(%zu): %d, *err %d", n, rc, err);
        CHECK(rp->cap == cap, "csapp_rio_unread: cap %zu after ENOMEM, was %zu", rp->cap, cap);
        free(data);
        return;
    }
    CHECK(rc == 0, "csapp_rio_unread(%zu) returned %d", n, rc);
    CHECK(rp->cap == expect, "csapp_rio_unread(%zu): cap %zu, the rule says %zu", n, rp->cap,
          expect);
    bytes_prepend(model, data, n);
    free(data);
}

static void do_find(const bytes_t *model)
{
    size_t off = ctl_size(model->len);
    size_t n = model->len - off;
    unsigned char *hay = exact_copy(n ? model->p + off : NULL, n);
    uint8_t c = ctl_byte();
    size_t seplen = c % 6;
    unsigned char *sep;
    if ((c & 0x40) && seplen <= n) { /* a needle that is there */
        size_t at = ctl_size(n - seplen);
        sep = exact_copy(hay + at, seplen);
    } else {
        sep = malloc(seplen ? seplen : 1);
        CHECK(sep != NULL, "harness out of memory");
        for (size_t i = 0; i < seplen; i++)
            sep[i] = ctl_byte();
    }
    ssize_t expect = -1;
    if (seplen > 0)
        for (size_t i = 0; i + seplen <= n; i++)
            if (memcmp(hay + i, sep, seplen) == 0) {
                expect = (ssize_t)i;
                break;
            }
    ssize_t got = csapp_find(hay, n, sep, seplen);
    CHECK(got == expect, "csapp_find(%zu bytes, %zu-byte sep): %zd, not %zd", n, seplen, got,
          expect);
    free(sep);
    free(hay);
}

static void do_echo_cut(const bytes_t *model, size_t bufsize)
{
    size_t n = ctl_size(model->len);
    unsigned char *p = exact_copy(model->p, n);
    uint8_t c = ctl_byte();
    int at_eof = c & 1;
    size_t limit = ctl_size(3 * bufsize);
    size_t got = csapp_echo_cut(p, n, at_eof, limit);
    size_t expect = model_echo_cut(p, n, at_eof, limit);
    CHECK(got == expect, "csapp_echo_cut(%zu bytes, eof %d, limit %zu): %zu, not %zu", n,
          at_eof, limit, got, expect);
    free(p);
}

static void run_buffered(void)
{
    size_t bufsize = 1 + ctl_size(600);
    fk.alloc_faults = 1;
    csapp_rio_t r;
    bytes_t model = {0};
    size_t limit = 0, scanned = 0; /* a line search in progress, if limit > 0 */
    csapp_rio_init(&r, FAKE_IN, bufsize);
    check_reader(&r, &model, bufsize, "init");
    for (int op = 0; op < MAX_OPS && ctl_left(); op++) {
        uint8_t c = ctl_byte();
        const char *name = "?";
        switch (c % 10) {
        case 0:
            name = "reserve";
            if ((c & 0xc0) == 0xc0) /* past any memory: ENOMEM, nothing lost */
                do_reserve(&r, &model, (c & 0x20) ? SIZE_MAX - ctl_byte() : SIZE_MAX / 2 + 1);
            else
                do_reserve(&r, &model, 1 + ctl_size(3 * bufsize));
            break;
        case 1:
            /* The Cython layer reserves before every fill (and raises
             * MemoryError when that fails). */
            name = "fill";
            if ((r.cap == r.end || (c & 0x10)) &&
                do_reserve(&r, &model, (c & 0x20) ? 1 + ctl_size(3 * bufsize) : 1) < 0)
                break;
            if (r.cap > r.end)
                do_fill(&r, &model, 1 + ctl_size(3 * bufsize));
            break;
        case 9: {
            /* The Cython layer's refill, fill(0): reserve(1), then ask for
             * bufsize. rio.h says it then reads bufsize - pending bytes, also
             * after an earlier large request grew the buffer and failed
             * (fuzz/crashes/twin_refill.py, fixed in csapp_rio_reserve). */
            name = "refill";
            unsigned failed = fk.alloc_failed;
            if (do_reserve(&r, &model, 1) < 0)
                break;
            int shrunk = fk.alloc_failed == failed; /* a failed shrink keeps the room */
            size_t pending = model.len;
            do_fill(&r, &model, bufsize);
            if (pending < bufsize && shrunk)
                CHECK(fk.last_count == bufsize - pending, "refill: asked for %zu with %zu "
                      "pending, not bufsize %zu - pending", fk.last_count, pending, bufsize);
            break;
        }
        case 2: {
            name = "line_length";
            if (limit == 0 || (c & 0x10)) {
                limit = 1 + ctl_size(3 * bufsize);
                scanned = 0;
            }
            size_t before = scanned;
            size_t n = csapp_rio_line_length(&r, limit, &scanned);
            size_t expect = model_line_length(&model, limit);
            size_t span = model.len < limit ? model.len : limit;
            CHECK(n == expect, "csapp_rio_line_length(limit %zu, scanned %zu) over %zu bytes: "
                  "%zu, not %zu", limit, before, model.len, n, expect);
            CHECK(scanned >= before && scanned <= span,
                  "csapp_rio_line_length: *scanned went from %zu to %zu (span %zu)", before,
                  scanned, span);
            if (n > 0 && (c & 0x20)) { /* take the line, as the Cython layer does */
                csapp_rio_consume(&r, n);
                bytes_drop(&model, n);
                limit = 0;
            }
            break;
        }
        case 3: {
            name = "consume";
            size_t n = ctl_size(model.len);
            size_t cap = r.cap;
            unsigned failed = fk.alloc_failed;
            csapp_rio_consume(&r, n);
            bytes_drop(&model, n);
            limit = 0;
            if (model.len == 0)
                CHECK(r.start == 0 && r.end == 0, "csapp_rio_consume: empty but start %zu",
                      r.start);
            /* A shrink that cannot allocate keeps the larger buffer. */
            if (cap > bufsize && model.len <= bufsize && fk.alloc_failed == failed)
                CHECK(r.cap == bufsize, "csapp_rio_consume: cap %zu did not shrink to %zu",
                      r.cap, bufsize);
            break;
        }
        case 4:
            name = "unread";
            do_unread(&r, &model, ctl_size(2 * bufsize + 2));
            limit = 0;
            break;
        case 5: {
            name = "shrink";
            size_t cap = r.cap;
            unsigned failed = fk.alloc_failed;
            csapp_rio_shrink(&r);
            /* A shrink that cannot allocate keeps the larger buffer. */
            size_t expect = cap > bufsize && model.len <= bufsize && fk.alloc_failed == failed
                                ? bufsize : cap;
            CHECK(r.cap == expect, "csapp_rio_shrink: cap %zu, not %zu", r.cap, expect);
            break;
        }
        case 6:
            name = "find";
            do_find(&model);
            break;
        case 7:
            name = "echo_cut";
            do_echo_cut(&model, bufsize);
            break;
        default:
            /* Release only one time in four: it drops what is buffered. */
            if ((c & 0x30) != 0x30) {
                name = "nothing";
                break;
            }
            name = "release";
            csapp_rio_release(&r);
            model.len = 0;
            limit = 0;
            break;
        }
        check_reader(&r, &model, bufsize, name);
    }
    csapp_rio_release(&r);
    bytes_free(&model);
    fk.alloc_faults = 0;
}

/* ---------------------------------------------------------- mode 2: echo */

static void run_echo(void)
{
    size_t bufsize = 1 + ctl_size(300);
    size_t limit = ctl_size(3 * bufsize);
    csapp_rio_t r;
    bytes_t model = {0};
    size_t echoed = 0;
    csapp_rio_init(&r, FAKE_IN, bufsize);
    /* A fresh reader, no buffer yet: csapp_rio_echo once computed NULL + 0
     * here (fuzz/crashes/echo-null-buffer-offset; csapp_rio_data now). */
    memset(&ew, 0, sizeof ew);
    ew.rp = &r;
    ew.model = &model;
    ew.limit = limit ? limit : 1;
    fk.out.len = 0;
    int rc = -1, err = 0;
    for (unsigned call = 0;; call++) {
        CHECK(call < MAX_ECHO_CALLS, "csapp_rio_echo: no end after %u calls", call);
        uint8_t c = ctl_byte();
        ew.once = c & 1;
        ew.pause = (c >> 1) & 1;
        ew.busy = ew.eof = ew.must_return = 0;
        ew.calls = 0;
        ew.last_short = ew.last_failed = 0;
        ew.active = 1;
        size_t echoed0 = echoed, out0 = fk.out.len;
        err = 0;
        rc = csapp_rio_echo(&r, FAKE_OUT, limit, ew.once, ew.pause, &echoed, &err);
        ew.active = 0;
        CHECK(echoed - echoed0 == fk.out.len - out0,
              "csapp_rio_echo: *echoed grew by %zu, %zu bytes were written", echoed - echoed0,
              fk.out.len - out0);
        check_reader(&r, &model, bufsize, "csapp_rio_echo");
        CHECK(ew.must_return == (rc == 1), "csapp_rio_echo returned %d (once %d, a whole write "
              "before EOF: %d)", rc, ew.once, ew.must_return);
        if (rc == 1)
            continue;
        if (rc == 0) {
            CHECK(ew.eof && model.len == 0, "csapp_rio_echo: 0 with eof %d, %zu bytes left",
                  ew.eof, model.len);
            break;
        }
        CHECK(rc == -1, "csapp_rio_echo returned %d", rc);
        CHECK(ew.calls > 0, "csapp_rio_echo: -1 (*err %d) without a read or write", err);
        if (fk.last_ret < 0)
            CHECK(err == fk.last_errno, "csapp_rio_echo: *err %d, the call failed with %d", err,
                  fk.last_errno);
        else if (ew.last_short)
            CHECK(err == EINTR, "csapp_rio_echo: *err %d after a short write", err);
        else
            CHECK(err == EINTR && ew.pause && ew.busy,
                  "csapp_rio_echo: -1 with *err %d after a call that went through (pause %d)",
                  err, ew.pause);
        if (err != EINTR && !csapp_would_block(err))
            break; /* the caller raises; what is buffered stays */
    }
    /* Written, then buffered: exactly the bytes delivered, in order. */
    CHECK(fk.out.len + model.len == fk.pos, "csapp_rio_echo: %zu written + %zu buffered, %zu "
          "read", fk.out.len, model.len, fk.pos);
    CHECK(same(fk.out.p, fk.stream, fk.out.len),
          "csapp_rio_echo: the bytes written are not the stream");
    if (rc == 0 && !fk.early_eof)
        CHECK(fk.pos == fk.len && fk.out.len == fk.len,
              "csapp_rio_echo: EOF after %zu of %zu bytes", fk.out.len, fk.len);
    csapp_rio_release(&r);
    bytes_free(&model);
}

/* ------------------------------------------------------------- the entry */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t slen = ((size_t)data[1] | (size_t)data[2] << 8) % (size - 3 + 1);
    memset(&ew, 0, sizeof ew);
    fk.stream = data + 3;
    fk.len = slen;
    fk.pos = 0;
    fk.early_eof = 0;
    fk.out.len = 0;
    fk.calls = 0;
    fk.last_ret = 0;
    fk.last_errno = 0;
    fk.last_count = 0;
    fk.alloc_faults = 0;
    fk.alloc_failed = 0;
    ctl_p = data + 3 + slen;
    ctl_n = size - 3 - slen;
    ctl_pos = 0;
    switch (data[0] % 3) {
    case 0:
        run_unbuffered();
        break;
    case 1:
        run_buffered();
        break;
    default:
        run_echo();
        break;
    }
    /* fk.out is kept between inputs (its capacity only); nothing else is. */
    return 0;
}
