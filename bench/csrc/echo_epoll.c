/*
 * echo_epoll.c -- the C limit for a one-thread echo server: one thread,
 * level-triggered epoll, non-blocking sockets, a 64 KiB input buffer per
 * connection. Each read takes what the kernel has (up to the free room); every
 * complete line then goes back in one write (everything through the last
 * newline), the partial line stays. A buffer full of one line goes back as it
 * is, and what is left at end of file goes back before the close (csapp's
 * echo rule). Output the socket does not take waits for EPOLLOUT, and the
 * connection is not read until it has drained. TCP_NODELAY is left off, like
 * every server the benchmarks compare.
 * Usage: echo_epoll PORT   (0 picks one; prints "listening on port N");
 * SIGINT or SIGTERM closes every connection and exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFSIZE (64 * 1024)
#define MAXEVENTS 256

struct conn {
    int fd;
    int closing;   /* end of file seen: close once the output drains */
    size_t start;  /* buf[start, end) holds the bytes not yet echoed */
    size_t end;
    size_t pending; /* buf[start, start + pending) waits for EPOLLOUT */
    char *buf;
};

static volatile sig_atomic_t stopping;
static int ep = -1;
static struct conn **conns; /* indexed by descriptor */
static size_t nconns;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int watch(int op, int fd, unsigned events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    return epoll_ctl(ep, op, fd, &ev);
}

static void drop(struct conn *c)
{
    conns[c->fd] = NULL;
    close(c->fd); /* leaves the epoll set with it */
    free(c->buf);
    free(c);
}

/* Write buf[start, start + n); what the socket does not take waits for
 * EPOLLOUT. Returns 0, or -1 if the connection was dropped. */
static int send_out(struct conn *c, size_t n)
{
    int waiting = c->pending != 0; /* already watched for EPOLLOUT */
    ssize_t w;
    do
        w = write(c->fd, c->buf + c->start, n);
    while (w < 0 && errno == EINTR);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        drop(c);
        return -1;
    }
    size_t done = w > 0 ? (size_t)w : 0;
    c->start += done;
    c->pending = n - done;
    if (c->pending) {
        if (!waiting && watch(EPOLL_CTL_MOD, c->fd, EPOLLOUT) < 0) {
            drop(c);
            return -1;
        }
        return 0;
    }
    if (c->closing) {
        drop(c);
        return -1;
    }
    if (c->start == c->end)
        c->start = c->end = 0;
    return 0;
}

static void on_readable(struct conn *c)
{
    if (c->start > 0) { /* move the partial line to the front */
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    ssize_t n;
    do
        n = read(c->fd, c->buf + c->end, BUFSIZE - c->end);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            drop(c);
        return;
    }
    if (n == 0) { /* end of file: the partial line goes back, then close */
        c->closing = 1;
        if (c->end == c->start)
            drop(c);
        else
            (void)send_out(c, c->end - c->start);
        return;
    }
    /* The bytes before this read hold no newline: search only the new ones. */
    char *nl = memrchr(c->buf + c->end, '\n', (size_t)n);
    c->end += (size_t)n;
    size_t out = nl ? (size_t)(nl - c->buf) + 1 - c->start : 0;
    if (!nl && c->end == BUFSIZE)
        out = c->end - c->start; /* one line fills the buffer: send it as is */
    if (out)
        (void)send_out(c, out);
}

static void on_writable(struct conn *c)
{
    if (send_out(c, c->pending) == 0 && c->pending == 0 &&
        watch(EPOLL_CTL_MOD, c->fd, EPOLLIN) < 0)
        drop(c);
}

static void accept_all(int lfd, int *paused)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors or memory: stop listening for 100 ms. */
                if (watch(EPOLL_CTL_MOD, lfd, 0) == 0)
                    *paused = 1;
            }
            return;
        }
        if ((size_t)fd >= nconns) {
            size_t n = nconns ? nconns : 1024;
            while (n <= (size_t)fd)
                n *= 2;
            struct conn **grown = realloc(conns, n * sizeof *grown);
            if (!grown) {
                close(fd);
                continue;
            }
            memset(grown + nconns, 0, (n - nconns) * sizeof *grown);
            conns = grown;
            nconns = n;
        }
        struct conn *c = calloc(1, sizeof *c);
        char *buf = malloc(BUFSIZE);
        if (!c || !buf || watch(EPOLL_CTL_ADD, fd, EPOLLIN) < 0) {
            free(c);
            free(buf);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->buf = buf;
        conns[fd] = c;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: echo_epoll PORT\n");
        return 2;
    }
    int port = atoi(argv[1]);

    /* SIGINT and SIGTERM are blocked except inside epoll_pwait, so a stop
     * request always interrupts the wait and is never lost between waits. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t stops, waiting;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigprocmask(SIG_BLOCK, &stops, &waiting);
    sigdelset(&waiting, SIGINT);
    sigdelset(&waiting, SIGTERM);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((unsigned short)port);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        listen(lfd, 1024) < 0) {
        perror("bind/listen");
        return 1;
    }
    socklen_t len = sizeof addr;
    getsockname(lfd, (struct sockaddr *)&addr, &len);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0 || watch(EPOLL_CTL_ADD, lfd, EPOLLIN) < 0) {
        perror("epoll");
        return 1;
    }
    printf("listening on port %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    struct epoll_event evs[MAXEVENTS];
    int paused = 0;
    while (!stopping) {
        int n = epoll_pwait(ep, evs, MAXEVENTS, paused ? 100 : -1, &waiting);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("epoll_wait");
            return 1;
        }
        if (paused && watch(EPOLL_CTL_MOD, lfd, EPOLLIN) == 0)
            paused = 0;
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                accept_all(lfd, &paused);
                continue;
            }
            struct conn *c = conns[fd];
            if (!c)
                continue;
            if (c->pending)
                on_writable(c); /* an error or hang-up shows as a failed write */
            else
                on_readable(c); /* ... or as a failed or empty read */
        }
    }
    for (size_t fd = 0; fd < nconns; fd++)
        if (conns[fd])
            drop(conns[fd]);
    free(conns);
    close(ep);
    close(lfd);
    return 0;
}
