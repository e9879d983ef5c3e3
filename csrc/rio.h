/*
 * rio.h -- the C core of csapp: CSAPP's robust I/O (RIO) over POSIX read/write.
 *
 * No Python here. Every function that makes a system call makes it once per
 * loop turn and never retries EINTR itself: it returns -1 with the error in
 * *err and reports the bytes already moved through an out-parameter, so the
 * caller (the Cython layer) can run Python's signal handlers and resume.
 * Line search uses memchr and copies use memcpy; nothing loops over bytes.
 */
#ifndef CSAPP_RIO_H
#define CSAPP_RIO_H

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

/*
 * csapp_readn -- CSAPP rio_readn: read into buf[*done:n] until n bytes or EOF.
 * Returns 0 when done (*done == n, or *done < n at EOF), -1 on error with
 * *err set (EINTR and EAGAIN included). *done counts every byte read so far.
 * A short read(2) also returns -1 with *err = EINTR, so the caller runs its
 * signal handlers before the next read blocks, then resumes.
 */
int csapp_readn(int fd, void *buf, size_t n, size_t *done, int *err);

/*
 * csapp_writen -- CSAPP rio_writen: write buf[*done:n] until all of it is out.
 * Returns 0 when *done == n, -1 on error with *err set; *done is exact.
 * A short write(2) also returns -1 with *err = EINTR (a signal cut it short
 * on a blocking descriptor), so the caller runs its handlers and resumes.
 */
int csapp_writen(int fd, const void *buf, size_t n, size_t *done, int *err);

/*
 * The buffered reader (CSAPP rio_t). The bytes read from the kernel and not
 * yet returned are buf[start:end]. The buffer is allocated on first use with
 * bufsize bytes; it grows past bufsize only while a partial result is
 * pending (a long line, a large read) and shrinks back once it is returned.
 */
typedef struct {
    int fd;
    unsigned char *buf;
    size_t cap;      /* allocated bytes */
    size_t bufsize;  /* nominal size: how much one refill asks for */
    size_t start;
    size_t end;
} csapp_rio_t;

/* CSAPP rio_readinitb: bind to fd with the given nominal size, no buffer yet. */
void csapp_rio_init(csapp_rio_t *rp, int fd, size_t bufsize);

/* Free the buffer; the reader keeps fd and bufsize and holds nothing. */
void csapp_rio_release(csapp_rio_t *rp);

/* Bytes buffered. */
static inline size_t csapp_rio_buffered(const csapp_rio_t *rp)
{
    return rp->end - rp->start;
}

/* The first buffered byte; NULL while the reader has no buffer yet (so no
 * caller ever computes NULL + 0, which C leaves undefined). */
static inline unsigned char *csapp_rio_data(const csapp_rio_t *rp)
{
    return rp->buf != NULL ? rp->buf + rp->start : NULL;
}

/* Does err mean "would block" (EAGAIN, or EWOULDBLOCK where they differ)? */
static inline int csapp_would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK;
}

/*
 * csapp_rio_line_length -- how many buffered bytes make the next line of at
 * most `limit` bytes: up to and including the first '\n', or `limit` bytes.
 * Returns 0 when neither is buffered yet. *scanned (0 on the first call)
 * remembers how far the search went, so a long line is searched only once.
 */
static inline size_t csapp_rio_line_length(const csapp_rio_t *rp, size_t limit,
                                           size_t *scanned)
{
    size_t avail = rp->end - rp->start;
    size_t span = avail < limit ? avail : limit;
    if (*scanned < span) {
        const unsigned char *from = rp->buf + rp->start;
        const unsigned char *nl = memchr(from + *scanned, '\n', span - *scanned);
        if (nl != NULL)
            return (size_t)(nl - from) + 1;
        *scanned = span;
    }
    return avail >= limit ? limit : 0;
}

/*
 * csapp_rio_reserve -- make room for at least `room` bytes after end (room
 * 1: any free space), by moving the buffered bytes to the front, and growing
 * the buffer (to bufsize, then doubling) only when that is not enough. A
 * buffer left grown past bufsize (a large read that failed) goes back to
 * bufsize first when the pending bytes and `room` fit in it.
 * Returns 0, or -1 with *err = ENOMEM. So a refill that needs no more than
 * bufsize asks the kernel for bufsize - pending bytes (see csapp_rio_fill).
 */
int csapp_rio_reserve(csapp_rio_t *rp, size_t room, int *err);

/*
 * csapp_rio_fill -- one read(2) of at most `want` bytes into the free space
 * after end (the caller reserved it). Returns the count (0 at EOF), or -1
 * with *err set.
 */
ssize_t csapp_rio_fill(csapp_rio_t *rp, size_t want, int *err);

/* Give a buffer that grew past bufsize back once what it holds fits again. */
void csapp_rio_shrink(csapp_rio_t *rp);

/* Consume n buffered bytes (n <= buffered). */
static inline void csapp_rio_consume(csapp_rio_t *rp, size_t n)
{
    rp->start += n;
    if (rp->start == rp->end)
        rp->start = rp->end = 0;
    if (rp->cap > rp->bufsize)
        csapp_rio_shrink(rp);
}

/*
 * csapp_rio_unread -- put n bytes back in front of the buffered ones (bytes a
 * caller took from the kernel directly and must not lose). A buffer that must
 * grow for them grows to max(pending, bufsize). 0, or -1 ENOMEM.
 */
int csapp_rio_unread(csapp_rio_t *rp, const void *data, size_t n, int *err);

/*
 * csapp_rio_echo -- CSAPP's echo loop in C: read from rp's descriptor into
 * its buffer and write back to out_fd every complete line buffered (all of
 * them, up to the last '\n', in one write); a line longer than `limit` goes
 * back in pieces of at least `limit` bytes, and the last one at EOF as it
 * is. Bytes leave the buffer only once written, so an error, a timeout or
 * a signal loses nothing: calling again goes on where it stopped.
 * Returns 0 at EOF with everything echoed; with `once`, 1 as soon as one
 * write has sent back what was complete (a server's verbose log reports
 * each); or -1 with *err set (EINTR and EAGAIN included; a short write is
 * reported as EINTR). With `pause`, a read that follows a read or a write
 * of the same call is not issued: -1 with *err = EINTR comes back instead,
 * so the caller runs its signal handlers before a read that may block for
 * good (the caller passes it where its handlers run: Python's main thread).
 * *echoed is increased by every byte written.
 */
int csapp_rio_echo(csapp_rio_t *rp, int out_fd, size_t limit, int once, int pause,
                   size_t *echoed, int *err);

/* What one csapp_rio_echo_turn ended with (csapp._shared's TURN_* values). */
enum {
    CSAPP_TURN_IDLE = 0,        /* everything complete went back: wait for input */
    CSAPP_TURN_DRAINED = 1,     /* output held from an earlier turn went out too */
    CSAPP_TURN_BLOCKED = 2,     /* output waits for the socket to take it */
    CSAPP_TURN_BLOCKED_EOF = 3, /* output waits, and the client has closed */
    CSAPP_TURN_CLOSED = 4       /* the client closed and everything went back */
};

/*
 * csapp_rio_echo_turn -- one turn of an event-driven echo server for one
 * ready, non-blocking descriptor (CSAPP echoservers' check_clients, without
 * its lost lines). rp holds only what must wait: output the socket did not
 * take, or a partial line. (1) If rp holds bytes the echo rule sends now
 * (with `writable`, the descriptor reported writable after a blocked turn:
 * all it holds, since the rest of a long line's piece cut earlier is owed
 * though the rule alone would wait for more), one write of them; if the
 * socket does not take them all, the turn ends
 * CSAPP_TURN_BLOCKED after one read appended to rp, made only while rp
 * holds fewer than high_water bytes. (2) One read(2) of scratch_size bytes
 * into scratch (the caller's, shared by all its connections). (3) rp's
 * partial line followed by the new bytes, cut by the echo rule (csapp_echo_cut;
 * all of it at EOF), go back in one write (writev when both hold some);
 * what the socket does not take is appended to rp. A reader left holding
 * nothing frees its buffer, so an idle connection costs no buffer.
 * The echo rule here is csapp_rio_echo's loop in one write: through the
 * last newline, and a long line's piece (limit bytes or more) after it too.
 * CSAPP_TURN_DRAINED: output held from an earlier turn went out (step 1, or
 * step 3 sending all the turn began holding): the caller stops waiting for
 * EPOLLOUT. EAGAIN and EINTR end the turn (level-triggered readiness brings
 * the descriptor back); any other error returns -1 with *err, keeping every
 * byte read, except ENOMEM: no memory to keep what must wait loses the bytes
 * of that read not written (the caller closes the connection).
 * *echoed grows by the bytes written, *received by those read.
 */
int csapp_rio_echo_turn(csapp_rio_t *rp, int writable, unsigned char *scratch,
                        size_t scratch_size, size_t limit, size_t high_water, size_t *echoed,
                        size_t *received, int *err);

/* The most ready descriptors one csapp_epoll_wait returns (select.epoll's
 * default maxevents, FD_SETSIZE - 1). */
#define CSAPP_READY_MAX 1023

/*
 * csapp_epoll_wait -- one epoll_wait(2) of an event server: the descriptors
 * of up to max (at most CSAPP_READY_MAX) ready events into fds[] and their
 * event masks into masks[]. timeout_ms as epoll_wait's (-1: no deadline).
 * Returns how many (0 at the deadline), or -1 with *err, EINTR included
 * (the caller runs its signal handlers). Linux only: elsewhere -1 with
 * ENOSYS.
 */
int csapp_epoll_wait(int epfd, int *fds, unsigned *masks, int max, int timeout_ms, int *err);

/*
 * csapp_find -- where sep[0:seplen] first occurs in buf[0:n]: its offset, or
 * -1 when it does not (or seplen is 0). memchr for one byte, memmem for more.
 * The line search of csapp.aio's buffer.
 */
ssize_t csapp_find(const void *buf, size_t n, const void *sep, size_t seplen);

/*
 * csapp_echo_cut -- how many leading bytes of buf[0:n] an echo server sends
 * back now: through the last '\n'; with none, all of them at EOF or once
 * `limit` bytes are waiting (csapp._shared.echo_cut, the rule of
 * csapp_rio_echo).
 */
size_t csapp_echo_cut(const void *buf, size_t n, int at_eof, size_t limit);

#endif /* CSAPP_RIO_H */
