/*
 * rio_fuzz.c -- a libFuzzer harness for the C core (csrc/rio.c).
 *
 * Build (scripts/fuzz.sh does it): rio.c goes into an object of its own with
 *
 *   -Dread=csapp_fake_read -Dwrite=csapp_fake_write -Dwritev=csapp_fake_writev
 *   -Drealloc=csapp_fake_realloc -U_FORTIFY_SOURCE
 *
 * so its three system calls land in the fake descriptor defined here, and its
 * one allocator call in a fake that can fail, while libFuzzer, the
 * sanitizers and this file keep the real ones. The macros are safe with what
 * rio.c includes: they only rename glibc's prototypes of read() and write()
 * in <unistd.h>, of writev() in <sys/uio.h> and of realloc() in <stdlib.h>
 * (no struct there has a member of those names). Fortified builds are the
 * one trap: glibc's inline read() wrapper would call the real read through
 * an asm alias the macro cannot reach, so _FORTIFY_SOURCE is turned off;
 * fuzz.sh checks with nm that rio.o has no undefined read, write, writev or
 * realloc left. The fake writev is the fake write over the concatenation of
 * its iovecs (each of them proven addressable under ASan).
 *
 * Input: byte 0 picks the mode, bytes 1-2 the length of the stream the fake
 * descriptor delivers, then the stream; the rest are control bytes that pick
 * the operations and, for each read()/write()/writev(), what the descriptor
 * does: a full or a short transfer, EINTR, EAGAIN, an early EOF or a hard
 * error (ECONNRESET for a read, EPIPE for a write). After MAX_FAULTS calls,
 * or once the control bytes run out, it behaves, so every run ends.
 *
 *   mode 0: csapp_readn / csapp_writen, resumed after every -1 as the
 *           Cython layer does, against the stream and a log of the writes.
 *   mode 1: the buffered reader (reserve, fill, line_length, consume,
 *           unread, shrink, release) against a model of what is buffered,
 *           with allocations that may fail (ENOMEM must lose nothing);
 *           csapp_find and csapp_echo_cut against naive versions.
 *   mode 2: csapp_rio_echo with fake reads and writes, once and pause.
 *   mode 3: csapp_rio_echo_turn, turn after turn on one non-blocking fake
 *           socket until CLOSED (its EOF is sticky: 0 forever after), with
 *           input-chosen scratch size, limit, high-water mark and failing
 *           allocations, and `writable` as csapp.servers.event passes it
 *           (EPOLLOUT may come only while it waits for it: after BLOCKED*,
 *           until DRAINED), against a model of the stream: each write offers
 *           exactly the next unwritten bytes, cut by the echo rule (or, on a
 *           writable descriptor, all that is held when the rule sends
 *           nothing: rio.h); after every turn (also -1, also ENOMEM)
 *           written + buffered == read, *echoed and *received exact, the
 *           state agrees with what the calls did and with what the server
 *           does with it, an empty reader holds no buffer, no read above
 *           the high-water mark while output waits, at most two reads and
 *           two writes; at CLOSED everything read was written.
 *
 * Byte 0: 0-127 pick modes 0-2 (byte % 3, as before mode 3 existed, so the
 * corpus keeps its meaning), 128-255 mode 3. -DRIO_FUZZ_MODE=N (in
 * FUZZ_CFLAGS) runs every input in mode N, to fuzz one mode alone.
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
#include <sys/uio.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define HAVE_ASAN 1
#endif
#endif

#define FAKE_IN 100       /* the descriptor the readers read */
#define FAKE_OUT 101      /* the one writen and echo write to */
#define FAKE_SOCK 102     /* mode 3's socket: echo_turn reads and writes it */
#define MAX_FAULTS 600    /* fake calls that may misbehave; later ones behave */
#define MAX_OPS 300       /* operations per input */
#define MAX_ECHO_CALLS 100000
#define MAX_TURNS 100000
#define FAKE_MEM_MAX ((size_t)1 << 24) /* larger allocations fail, as malloc would */


/* ------------------------------------------------------------ reporting */

/* RIO_FUZZ_TRACE=1 in the environment: mode 3 prints its turns and calls
 * (to read a saved input: rio_fuzz FILE). */
static int trace;

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

/* What one write of csapp_rio_echo_turn offers: csapp_rio_echo's loop over
 * the rule in one write (through the last '\n', and a long line's piece of
 * limit bytes or more after it too; all of it at EOF). */
static size_t model_turn_cut(const unsigned char *p, size_t n, int at_eof, size_t limit)
{
    size_t cut = model_echo_cut(p, n, at_eof, limit);
    return n - cut >= limit ? n : cut;
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
    int alloc_faults;    /* may the fake realloc fail (modes 1 and 3)? */
    unsigned alloc_failed; /* allocations that failed */
    bytes_t gather;      /* writev's iovecs, concatenated */
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

/* The mode-3 watch over csapp_rio_echo_turn: the model of the stream (what
 * was read and written over all the turns) and, per turn, which calls were
 * made, in the order rio.h allows:
 *   [write of held output: if not all taken, [read below high_water], end]
 *   read: if it failed, end; [write of the held partial line + new bytes], end. */
enum {
    TP_START,    /* no call yet this turn */
    TP_DRAINED,  /* step 1's write took everything: the read comes next */
    TP_BLOCKED,  /* step 1's write did not: at most one read, then the end */
    TP_READ,     /* step 2's read returned bytes or EOF: at most one write */
    TP_END       /* nothing more may happen in this turn */
};

static struct {
    int active;
    const csapp_rio_t *rp;
    const unsigned char *scratch;
    size_t scratch_size;
    size_t limit;        /* as the call uses it (0 means 1) */
    size_t high_water;
    size_t received;     /* stream[0:received] was read, over all the turns */
    size_t written;      /* stream[0:written] was written back */
    int eof;             /* a read returned 0: every later one does too */
    int want_write;      /* the server waits for EPOLLOUT (the last state it was
                          * told, IDLE aside, was BLOCKED or BLOCKED_EOF) */
    /* this turn */
    int writable;        /* the turn's `writable` argument */
    size_t start_held;   /* bytes held when the turn began */
    int phase;           /* TP_* */
    const char *end_why; /* why the turn had to end (TP_END) */
    unsigned reads, writes;
    size_t turn_read, turn_written;
    int w1_whole;        /* step 1 wrote all it offered */
    int blocked;         /* a write did not take all it was offered */
    int eof_now;         /* a read returned 0 in this turn */
    int hard_errno;      /* a call failed with an error that is not EINTR/EAGAIN */
    int writevs;         /* writev calls in this turn */
    int offer_nl;        /* the last write offered bytes ending at a newline */
    int lost;            /* ENOMEM dropped bytes (as rio.h allows): the input ends */
} tw;

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
ssize_t csapp_fake_writev(int fd, const struct iovec *iov, int iovcnt);
void *csapp_fake_realloc(void *p, size_t size);

void *csapp_fake_realloc(void *p, size_t size)
{
    if (size > FAKE_MEM_MAX || (fk.alloc_faults && ctl_left() && ctl_byte() % 8 == 0)) {
        fk.alloc_failed++;
        return NULL;
    }
    return realloc(p, size);
}

/* ------------------------------------------- the mode-3 watch (echo_turn) */

/* Bytes read and not yet written: stream[tw.written:tw.received]. */
static size_t turn_pending(void)
{
    return tw.received - tw.written;
}

/* What step 1 sends of the held bytes: the echo rule's cut, or, on a
 * writable descriptor, all of them when the rule sends nothing (the rest
 * of a piece a short write cut below limit is owed; rio.h). */
static size_t turn_step1_due(void)
{
    size_t pending = turn_pending();
    return tw.writable ? pending : model_turn_cut(fk.stream + tw.written, pending, 0, tw.limit);
}

static int not_now(int err)
{
    return err == EINTR || csapp_would_block(err);
}

static void turn_watch_read(const void *buf, size_t count)
{
    CHECK(tw.phase != TP_END, "csapp_rio_echo_turn: a read after %s, which ends the turn",
          tw.end_why);
    CHECK(tw.phase != TP_READ, "csapp_rio_echo_turn: a second read after the turn's read");
    CHECK(tw.reads < 2, "csapp_rio_echo_turn: a third read in one turn"); /* (g) */
    tw.reads++;
    CHECK(buf == tw.scratch && count == tw.scratch_size,
          "csapp_rio_echo_turn: a read of %zu bytes, not into the %zu-byte scratch", count,
          tw.scratch_size);
    size_t pending = turn_pending();
    if (tw.phase == TP_BLOCKED) { /* (f) */
        CHECK(csapp_rio_buffered(tw.rp) < tw.high_water,
              "csapp_rio_echo_turn: a read while step 1's write blocked with %zu bytes "
              "buffered, high_water %zu", csapp_rio_buffered(tw.rp), tw.high_water);
    } else if (tw.phase == TP_START) {
        size_t due = turn_step1_due();
        CHECK(due == 0, "csapp_rio_echo_turn: a read before writing the %zu held bytes the "
              "echo rule sends now (%zu held, limit %zu, writable %d)", due, pending, tw.limit,
              tw.writable);
    }
}

static void turn_read_done(ssize_t got, int err)
{
    int after_block = tw.phase == TP_BLOCKED;
    if (got < 0) {
        if (!not_now(err))
            tw.hard_errno = err;
        tw.phase = TP_END;
        tw.end_why = not_now(err) ? "a read that failed with EINTR/EAGAIN"
                                  : "a read that failed with a hard error";
        return;
    }
    tw.received += (size_t)got;
    tw.turn_read += (size_t)got;
    if (got == 0)
        tw.eof = tw.eof_now = 1;
    if (after_block) {
        tw.phase = TP_END;
        tw.end_why = "the read after step 1's write blocked";
    } else {
        tw.phase = TP_READ;
    }
}

/* At each write or writev: what it offers (the concatenation for writev). */
static void turn_watch_write(const unsigned char *buf, size_t count, int is_writev)
{
    const char *what = is_writev ? "writev" : "write";
    const csapp_rio_t *rp = tw.rp;
    CHECK(tw.phase != TP_END, "csapp_rio_echo_turn: a %s after %s, which ends the turn", what,
          tw.end_why);
    CHECK(tw.phase == TP_START || tw.phase == TP_READ,
          "csapp_rio_echo_turn: a %s right after step 1's write (%s)", what,
          tw.phase == TP_DRAINED ? "it took everything: step 2's read comes next"
                                 : "it blocked: only a read may follow");
    CHECK(tw.writes < 2, "csapp_rio_echo_turn: a third write in one turn"); /* (g) */
    tw.writes++;
    CHECK(count > 0, "csapp_rio_echo_turn: a %s of 0 bytes", what);
    size_t pending = turn_pending();
    const unsigned char *next = fk.stream + tw.written;
    /* (a) echo never invents, reorders or duplicates: the next unwritten bytes. */
    CHECK(count <= pending && same(buf, next, count),
          "csapp_rio_echo_turn: a %s of %zu bytes that are not the next ones read and not "
          "written (%zu read, %zu written)", what, count, tw.received, tw.written);
    /* (c) the cut point obeys the echo rule. */
    int line_end = buf[count - 1] == '\n';
    tw.offer_nl = line_end;
    const unsigned char *last_nl = memrchr(buf, '\n', count);
    /* Lines and then a long line's piece, or only a piece. */
    int piece = count - (last_nl != NULL ? (size_t)(last_nl - buf) + 1 : 0) >= tw.limit;
    int last_at_eof = tw.eof && count == pending;
    /* rio.h: on a writable descriptor, step 1 sends all it holds (what a
     * blocked turn left of a piece is owed, though the rule would wait). */
    int owed_rest = tw.phase == TP_START && tw.writable && count == pending;
    CHECK(line_end || piece || last_at_eof || owed_rest,
          "csapp_rio_echo_turn: a %s of %zu bytes that neither ends at a newline, nor is a "
          "piece of >= %zu bytes without one, nor the last bytes at EOF, nor all that is held "
          "on a writable descriptor (%zu pending, eof %d, writable %d)", what, count, tw.limit,
          pending, tw.eof, tw.writable);
    if (tw.phase == TP_START) {
        /* Step 1: one write of what the held bytes' echo rule sends now. */
        size_t due = turn_step1_due();
        CHECK(!is_writev && buf == csapp_rio_data(rp),
              "csapp_rio_echo_turn: step 1 not one write from the buffered bytes");
        CHECK(count == due, "csapp_rio_echo_turn: step 1 offered %zu of the %zu held bytes, "
              "the echo rule says %zu (limit %zu, writable %d)", count, pending, due, tw.limit,
              tw.writable);
    } else {
        /* Step 3: the held partial line and the new bytes, cut by the rule. */
        size_t due = model_turn_cut(next, pending, tw.eof_now, tw.limit);
        CHECK(count == due, "csapp_rio_echo_turn: step 3 offered %zu of the %zu pending bytes, "
              "the echo rule says %zu (eof %d, limit %zu)", count, pending, due, tw.eof_now,
              tw.limit);
        size_t held = csapp_rio_buffered(rp);
        int both = held > 0 && count > held;
        CHECK(is_writev == both, "csapp_rio_echo_turn: step 3 used %s with %zu held and %zu new "
              "bytes (writev when both hold some)", what, held, count - held);
    }
}

static void turn_write_done(ssize_t put, size_t count, int err)
{
    int step1 = tw.phase == TP_START;
    if (put < 0 && !not_now(err)) {
        tw.hard_errno = err;
        tw.phase = TP_END;
        tw.end_why = "a write that failed with a hard error";
        return;
    }
    size_t k = put < 0 ? 0 : (size_t)put;
    tw.written += k;
    tw.turn_written += k;
    if (k < count)
        tw.blocked = 1;
    if (step1 && k == count) {
        tw.w1_whole = 1;
        tw.phase = TP_DRAINED;
    } else if (step1) {
        tw.phase = TP_BLOCKED;
    } else {
        tw.phase = TP_END;
        tw.end_why = "step 3's write";
    }
}

/* ------------------------------------------------ the fake system calls */

static ssize_t fake_read_act(void *buf, size_t count)
{
    if (tw.active && tw.eof) { /* a socket's EOF: 0 forever */
        fk.last_ret = 0;
        return 0;
    }
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

ssize_t csapp_fake_read(int fd, void *buf, size_t count)
{
    CHECK(fd == (tw.active ? FAKE_SOCK : FAKE_IN), "read(%d): not the fake input descriptor",
          fd);
    check_region(buf, count, "read");
    if (ew.active) {
        echo_watch_read(buf, count);
        ew.calls++;
    }
    if (tw.active)
        turn_watch_read(buf, count);
    fk.last_count = count;
    ssize_t got = fake_read_act(buf, count);
    if (tw.active) {
        int saved = errno;
        if (trace)
            fprintf(stderr, "  read(%zu) -> %zd%s%s\n", count, got, got < 0 ? " " : "",
                    got < 0 ? strerror(saved) : "");
        turn_read_done(got, got < 0 ? saved : 0);
        errno = saved;
    }
    return got;
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

static ssize_t fake_put_act(const void *buf, size_t count)
{
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

/* write(2) and writev(2) both end here, with what they offer in one piece. */
static ssize_t fake_put(int fd, const void *buf, size_t count, int is_writev)
{
    const char *what = is_writev ? "writev" : "write";
    CHECK(fd == (tw.active ? FAKE_SOCK : FAKE_OUT), "%s(%d): not the fake output descriptor",
          what, fd);
    if (ew.active) {
        CHECK(!is_writev, "csapp_rio_echo: a writev");
        echo_watch_write(buf, count);
        ew.calls++;
    }
    if (tw.active)
        turn_watch_write(buf, count, is_writev);
    fk.last_count = count;
    ssize_t put = fake_put_act(buf, count);
    if (tw.active) {
        int saved = errno;
        if (trace) {
            fprintf(stderr, "  %s(%zu: \"", what, count);
            for (size_t i = 0; i < count && i < 40; i++) {
                unsigned char b = ((const unsigned char *)buf)[i];
                fprintf(stderr, b == '\n' ? "\\n" : b >= 32 && b < 127 ? "%c" : "\\x%02x", b);
            }
            fprintf(stderr, "%s\") -> %zd%s%s\n", count > 40 ? "..." : "", put,
                    put < 0 ? " " : "", put < 0 ? strerror(saved) : "");
        }
        turn_write_done(put, count, put < 0 ? saved : 0);
        errno = saved;
    }
    return put;
}

ssize_t csapp_fake_write(int fd, const void *buf, size_t count)
{
    check_region(buf, count, "write");
    return fake_put(fd, buf, count, 0);
}

/* The fake write over the concatenated iovecs (a copy: what was offered). */
ssize_t csapp_fake_writev(int fd, const struct iovec *iov, int iovcnt)
{
    CHECK(iovcnt >= 1 && iovcnt <= 1024, "writev: iovcnt %d", iovcnt);
    check_region(iov, (size_t)iovcnt * sizeof *iov, "writev's iovec array of");
    fk.gather.len = 0;
    for (int i = 0; i < iovcnt; i++) {
        CHECK(iov[i].iov_len == 0 || iov[i].iov_base != NULL, "writev: iovec %d is NULL", i);
        check_region(iov[i].iov_base, iov[i].iov_len, "writev");
        bytes_append(&fk.gather, iov[i].iov_base, iov[i].iov_len);
    }
    if (tw.active)
        tw.writevs++;
    return fake_put(fd, fk.gather.p, fk.gather.len, 1);
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

/* ------------------------------------------------- mode 3: echo turns */

static const char *turn_name(int state)
{
    switch (state) {
    case CSAPP_TURN_IDLE:
        return "IDLE";
    case CSAPP_TURN_DRAINED:
        return "DRAINED";
    case CSAPP_TURN_BLOCKED:
        return "BLOCKED";
    case CSAPP_TURN_BLOCKED_EOF:
        return "BLOCKED_EOF";
    case CSAPP_TURN_CLOSED:
        return "CLOSED";
    case -1:
        return "-1";
    default:
        return "?";
    }
}

/* After one turn that returned rc (*err err): the model, the reader, the
 * state. */
static void check_turn(const csapp_rio_t *rp, unsigned turn, int rc, int err,
                       size_t echoed_delta, size_t received_delta, int alloc_failed)
{
    const char *st = turn_name(rc);
    size_t pending = turn_pending();
    const unsigned char *held = fk.stream + tw.written;
    CHECK(echoed_delta == tw.turn_written, "csapp_rio_echo_turn (turn %u, %s): *echoed grew "
          "by %zu, the writes took %zu", turn, st, echoed_delta, tw.turn_written);
    CHECK(received_delta == tw.turn_read, "csapp_rio_echo_turn (turn %u, %s): *received grew "
          "by %zu, the reads returned %zu", turn, st, received_delta, tw.turn_read);
    CHECK(rp->fd == FAKE_SOCK, "csapp_rio_echo_turn: fd changed");
    CHECK(rp->start <= rp->end && rp->end <= rp->cap,
          "csapp_rio_echo_turn (turn %u, %s): start %zu end %zu cap %zu", turn, st, rp->start,
          rp->end, rp->cap);
    CHECK((rp->cap == 0) == (rp->buf == NULL), "csapp_rio_echo_turn (turn %u, %s): cap %zu "
          "with buf %p", turn, st, rp->cap, (void *)rp->buf);
    /* (e) an idle connection costs no buffer. */
    CHECK(csapp_rio_buffered(rp) > 0 || rp->buf == NULL, "csapp_rio_echo_turn (turn %u, %s): "
          "holds nothing but keeps a %zu-byte buffer", turn, st, rp->cap);
    /* ENOMEM (no room to keep what must wait) may lose the bytes of the turn's
     * read that were not written, as rio.h says; only those, and the input
     * ends there (the caller closes the connection). */
    if (rc == -1 && err == ENOMEM && csapp_rio_buffered(rp) < pending) {
        size_t kept = csapp_rio_buffered(rp);
        CHECK(pending - kept <= tw.turn_read && same(csapp_rio_data(rp), held, kept),
              "csapp_rio_echo_turn (turn %u): ENOMEM dropped %zu bytes, not only the last ones "
              "of the %zu read in the turn", turn, pending - kept, tw.turn_read);
        tw.lost = 1;
        return;
    }
    /* (b) nothing lost, also after -1 and ENOMEM. */
    CHECK(csapp_rio_buffered(rp) == pending,
          "csapp_rio_echo_turn (turn %u, %s, *err %d): %zu written + %zu buffered, but %zu read",
          turn, st, rc < 0 ? err : 0, tw.written, csapp_rio_buffered(rp), tw.received);
    CHECK(same(csapp_rio_data(rp), held, pending), "csapp_rio_echo_turn (turn %u, %s): the "
          "buffered bytes are not the ones read and not written", turn, st);
    /* (g) */
    CHECK(tw.reads <= 2 && tw.writes <= 2, "csapp_rio_echo_turn (turn %u): %u reads, %u writes",
          turn, tw.reads, tw.writes);
    if (rc == -1) {
        CHECK((tw.hard_errno != 0 && err == tw.hard_errno) || (err == ENOMEM && alloc_failed),
              "csapp_rio_echo_turn (turn %u): -1 with *err %d; a call failed with %d, %s "
              "allocation failed", turn, err, tw.hard_errno, alloc_failed ? "an" : "no");
        return;
    }
    CHECK(tw.hard_errno == 0, "csapp_rio_echo_turn (turn %u): %s after a call failed with %d",
          turn, st, tw.hard_errno);
    /* (f), the other way: while output waits, a read below high_water. */
    if (tw.phase == TP_BLOCKED)
        CHECK(pending >= tw.high_water, "csapp_rio_echo_turn (turn %u): step 1's write blocked "
              "with %zu buffered, no read below high_water %zu", turn, pending, tw.high_water);
    /* A write that did not take all it was offered ends the turn BLOCKED*. */
    if (tw.blocked)
        CHECK(rc == CSAPP_TURN_BLOCKED || rc == CSAPP_TURN_BLOCKED_EOF,
              "csapp_rio_echo_turn (turn %u): %s after a write did not take everything", turn,
              st);
    /* Step 2's read went through and step 3 wrote nothing: the rule sent nothing. */
    if (tw.phase == TP_READ) {
        size_t due = model_turn_cut(held, pending, tw.eof_now, tw.limit);
        CHECK(due == 0, "csapp_rio_echo_turn (turn %u): %s with no write after the read, but "
              "the echo rule sends %zu of the %zu bytes held (eof %d, limit %zu)", turn, st,
              due, pending, tw.eof_now, tw.limit);
    }
    /* A read that returned 0: the turn ends CLOSED or BLOCKED_EOF. */
    if (tw.eof_now)
        CHECK(rc == (pending == 0 ? CSAPP_TURN_CLOSED : CSAPP_TURN_BLOCKED_EOF),
              "csapp_rio_echo_turn (turn %u): %s after reading EOF, %zu bytes held", turn, st,
              pending);
    /* (d) the state agrees with what is held. */
    switch (rc) {
    case CSAPP_TURN_CLOSED:
        CHECK(tw.eof && pending == 0, "csapp_rio_echo_turn (turn %u): CLOSED with eof %d, %zu "
              "bytes held", turn, tw.eof, pending);
        break;
    case CSAPP_TURN_BLOCKED_EOF:
        CHECK(tw.blocked && tw.eof_now && pending > 0, "csapp_rio_echo_turn (turn %u): "
              "BLOCKED_EOF with blocked %d, eof read %d, %zu bytes held", turn, tw.blocked,
              tw.eof_now, pending);
        break;
    case CSAPP_TURN_BLOCKED: {
        size_t due = model_echo_cut(held, pending, tw.eof, tw.limit);
        /* Or the rest of a piece (the blocked write offered no newline): the
         * next turn on the writable descriptor owes it. */
        CHECK(tw.blocked && (due > 0 || !tw.offer_nl),
              "csapp_rio_echo_turn (turn %u): BLOCKED with blocked %d "
              "and %zu bytes held, of which the echo rule sends %zu (eof %d, limit %zu)", turn,
              tw.blocked, pending, due, tw.eof, tw.limit);
        break;
    }
    case CSAPP_TURN_IDLE:
    case CSAPP_TURN_DRAINED:
        CHECK(!tw.blocked && !tw.eof_now, "csapp_rio_echo_turn (turn %u): %s after a blocked "
              "write or EOF", turn, st);
        CHECK(memchr(held, '\n', pending) == NULL &&
                  pending < tw.limit,
              "csapp_rio_echo_turn (turn %u): %s holding %zu bytes (limit %zu) %s: the echo "
              "rule sends %zu of them now", turn, st, pending, tw.limit,
              memchr(held, '\n', pending) ? "with a newline" : "without a newline",
              model_echo_cut(held, pending, 0, tw.limit));
        /* DRAINED: output held from an earlier turn went out: step 1 wrote
         * all it offered, or (with step 3's) all the turn began holding. */
        CHECK(rc != CSAPP_TURN_DRAINED || tw.w1_whole ||
                  (tw.start_held > 0 && tw.turn_written >= tw.start_held),
              "csapp_rio_echo_turn (turn %u): DRAINED, but step 1 wrote nothing whole and of "
              "the %zu bytes held before the turn %zu went out", turn, tw.start_held,
              tw.turn_written);
        CHECK(rc == CSAPP_TURN_DRAINED || !tw.w1_whole, "csapp_rio_echo_turn (turn %u): IDLE, "
              "but step 1 wrote the held output", turn);
        /* The server waits for EPOLLOUT and is not told otherwise (IDLE is
         * not reported): with nothing held, no turn will ever write, so
         * level-triggered EPOLLOUT brings the descriptor back at once,
         * forever (a busy loop). */
        CHECK(!(rc == CSAPP_TURN_IDLE && tw.want_write && pending == 0),
              "csapp_rio_echo_turn (turn %u): IDLE holding nothing after a BLOCKED turn (%zu "
              "bytes written, writable %d): the server keeps waiting for EPOLLOUT", turn,
              tw.turn_written, tw.writable);
        break;
    default:
        fail("csapp_rio_echo_turn returned %d", rc);
    }
}

static void run_echo_turns(void)
{
    uint8_t c = ctl_byte();
    size_t bufsize = 1 + ctl_size(300);
    size_t scratch_size = 1 + ctl_size(400);
    size_t limit = ctl_byte() % 65; /* 0 means 1 */
    size_t high_water = ctl_size(600);
    unsigned char *scratch = malloc(scratch_size); /* exact: ASan sees past it */
    CHECK(scratch != NULL, "harness out of memory");
    csapp_rio_t r;
    csapp_rio_init(&r, FAKE_SOCK, bufsize);
    fk.alloc_faults = c & 1;
    fk.out.len = 0;
    memset(&tw, 0, sizeof tw);
    tw.rp = &r;
    tw.scratch = scratch;
    tw.scratch_size = scratch_size;
    tw.limit = limit ? limit : 1;
    tw.high_water = high_water;
    size_t echoed = 0, received = 0;
    int rc = -1;
    if (trace)
        fprintf(stderr, "echo turns: %zu-byte stream, bufsize %zu, scratch %zu, limit %zu, "
                "high_water %zu, allocations %s\n", fk.len, bufsize, scratch_size, limit,
                high_water, fk.alloc_faults ? "may fail" : "succeed");
    for (unsigned turn = 0;; turn++) {
        CHECK(turn < MAX_TURNS, "csapp_rio_echo_turn: not CLOSED after %u turns", turn);
        tw.phase = TP_START;
        tw.end_why = "?";
        tw.reads = tw.writes = 0;
        tw.turn_read = tw.turn_written = 0;
        tw.w1_whole = tw.blocked = tw.eof_now = tw.hard_errno = tw.writevs = 0;
        tw.offer_nl = 0;
        tw.start_held = turn_pending();
        /* csapp.servers.event: the mask has EPOLLOUT only while the server
         * waits for it; the input says whether it came (the socket may
         * still be full, or only EPOLLIN came). */
        tw.writable = tw.want_write && (ctl_byte() & 1);
        size_t echoed0 = echoed, received0 = received;
        unsigned failed0 = fk.alloc_failed;
        int err = 0;
        tw.active = 1;
        rc = csapp_rio_echo_turn(&r, tw.writable, scratch, scratch_size, limit, high_water,
                                 &echoed, &received, &err);
        tw.active = 0;
        if (trace)
            fprintf(stderr, "turn %u%s: %s%s%s, %zu read, %zu written, %zu buffered%s\n", turn,
                    tw.writable ? " (writable)" : "", turn_name(rc), rc < 0 ? " " : "",
                    rc < 0 ? strerror(err) : "", tw.received, tw.written, csapp_rio_buffered(&r),
                    fk.alloc_failed > failed0 ? " (an allocation failed)" : "");
        check_turn(&r, turn, rc, err, echoed - echoed0, received - received0,
                   fk.alloc_failed > failed0);
        CHECK(fk.out.len == tw.written, "harness: %zu bytes out, %zu written", fk.out.len,
              tw.written);
        if (rc == CSAPP_TURN_CLOSED || tw.lost)
            break;
        /* The server's events (csapp.servers.event's _after_turn): BLOCKED*
         * adds EPOLLOUT, DRAINED takes it away, IDLE is not reported. */
        if (rc == CSAPP_TURN_BLOCKED || rc == CSAPP_TURN_BLOCKED_EOF)
            tw.want_write = 1;
        else if (rc == CSAPP_TURN_DRAINED)
            tw.want_write = 0;
        /* After -1 a server closes the connection (what is held is lost with
         * it), or the input goes on as if the error had passed: with a server
         * that waits for EPOLLOUT only while something is held. */
        if (rc == -1 && (ctl_byte() & 1))
            break;
        if (rc == -1)
            tw.want_write = tw.want_write && csapp_rio_buffered(&r) > 0;
    }
    /* (a) over the whole run, and at CLOSED everything read went back. */
    CHECK(same(fk.out.p, fk.stream, fk.out.len),
          "csapp_rio_echo_turn: the bytes written are not the stream");
    if (rc == CSAPP_TURN_CLOSED) {
        CHECK(tw.written == tw.received && fk.pos == tw.received,
              "csapp_rio_echo_turn: CLOSED with %zu of %zu bytes read written back", tw.written,
              tw.received);
        if (!fk.early_eof)
            CHECK(tw.received == fk.len, "csapp_rio_echo_turn: CLOSED after %zu of the %zu "
                  "bytes", tw.received, fk.len);
    }
    memset(&tw, 0, sizeof tw);
    csapp_rio_release(&r);
    free(scratch);
    fk.alloc_faults = 0;
}

/* ------------------------------------------------------------- the entry */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int env_read;
    if (!env_read) {
        const char *v = getenv("RIO_FUZZ_TRACE");
        trace = v != NULL && *v != '\0' && *v != '0';
        env_read = 1;
    }
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
    memset(&tw, 0, sizeof tw);
    int mode = data[0] >= 128 ? 3 : data[0] % 3;
#ifdef RIO_FUZZ_MODE
    mode = RIO_FUZZ_MODE;
#endif
    switch (mode) {
    case 0:
        run_unbuffered();
        break;
    case 1:
        run_buffered();
        break;
    case 2:
        run_echo();
        break;
    default:
        run_echo_turns();
        break;
    }
    /* fk.out and fk.gather are kept between inputs (their capacity only); nothing
     * else is. */
    return 0;
}
