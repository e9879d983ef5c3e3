/*
 * loadgen.c -- an epoll load generator for echo servers on loopback.
 *
 *   loadgen rr   HOST PORT CONNS SECONDS [LINE]  request/response: every
 *       connection sends one LINE-byte line (default 64) and waits for its
 *       echo, again and again; prints "<requests> <seconds> <errors>".
 *   loadgen bulk HOST PORT MIB [LINE]            one connection streams MIB
 *       MiB of LINE-byte lines while reading the echo back, checking every
 *       byte; prints "<bytes> <seconds> <errors>".
 * Every loop is bounded by count or time; errors are counted, not fatal.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *res, *p;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (p = res; p; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype, p->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, p->ai_addr, p->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void make_line(char *line, size_t len, unsigned seed)
{
    for (size_t i = 0; i + 1 < len; i++)
        line[i] = (char)('a' + (seed + i) % 26);
    line[len - 1] = '\n';
}

struct conn {
    int fd;
    size_t got;
};

static int rr(const char *host, const char *port, int conns, double seconds, size_t len)
{
    char *line = malloc(len), *buf = malloc(len);
    make_line(line, len, 7);
    struct conn *cs = calloc((size_t)conns, sizeof *cs);
    int ep = epoll_create1(0);
    long requests = 0, errors = 0;
    for (int i = 0; i < conns; i++) {
        cs[i].fd = connect_to(host, port);
        if (cs[i].fd < 0) {
            fprintf(stderr, "connect failed\n");
            return 1;
        }
        fcntl(cs[i].fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    double t0 = now(), deadline = t0 + seconds;
    for (int i = 0; i < conns; i++)
        if (write(cs[i].fd, line, len) != (ssize_t)len)
            errors++;
    struct epoll_event evs[256];
    double t = t0;
    while ((t = now()) < deadline) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int k = 0; k < n; k++) {
            struct conn *c = &cs[evs[k].data.u32];
            ssize_t r = read(c->fd, buf, len - c->got);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            c->got += (size_t)r;
            if (c->got == len) {
                c->got = 0;
                requests++;
                if (write(c->fd, line, len) != (ssize_t)len)
                    errors++;
            }
        }
    }
    printf("%ld %.6f %ld\n", requests, t - t0, errors);
    for (int i = 0; i < conns; i++)
        close(cs[i].fd);
    return 0;
}

static int bulk(const char *host, const char *port, long mib, size_t len)
{
    int fd = connect_to(host, port);
    if (fd < 0) {
        fprintf(stderr, "connect failed\n");
        return 1;
    }
    size_t total = (size_t)mib << 20;
    total -= total % len;
    size_t chunk_lines = 1024, chunk = chunk_lines * len;
    char *out = malloc(chunk), *expect = malloc(chunk), *in = malloc(1 << 16);
    for (size_t i = 0; i < chunk_lines; i++)
        make_line(out + i * len, len, (unsigned)i);
    memcpy(expect, out, chunk);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    size_t sent = 0, recvd = 0;
    long errors = 0;
    double t0 = now(), limit = t0 + 120.0;
    int wr_done = 0;
    while (recvd < total && now() < limit) {
        struct pollfd pfd = {.fd = fd, .events = (short)(POLLIN | (wr_done ? 0 : POLLOUT))};
        if (poll(&pfd, 1, 1000) < 0 && errno != EINTR) {
            errors++;
            break;
        }
        if (!wr_done && (pfd.revents & POLLOUT)) {
            size_t off = sent % chunk, n = chunk - off;
            if (n > total - sent)
                n = total - sent;
            ssize_t w = write(fd, out + off, n);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN) {
                errors++;
                break;
            }
            if (sent == total) {
                shutdown(fd, SHUT_WR);
                wr_done = 1;
            }
        }
        if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t r = read(fd, in, 1 << 16);
        if (r > 0) {
            for (ssize_t i = 0; i < r;) {
                size_t off = (recvd + (size_t)i) % chunk, n = chunk - off;
                if (n > (size_t)(r - i))
                    n = (size_t)(r - i);
                if (memcmp(in + i, expect + off, n) != 0)
                    errors++;
                i += (ssize_t)n;
            }
            recvd += (size_t)r;
        } else if (r == 0) {
            break;
        } else if (errno != EAGAIN) {
            errors++;
            break;
        }
    }
    double dt = now() - t0;
    if (recvd != total)
        errors++;
    printf("%zu %.6f %ld\n", recvd, dt, errors);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && strcmp(argv[1], "rr") == 0)
        return rr(argv[2], argv[3], atoi(argv[4]), atof(argv[5]),
                  argc > 6 ? (size_t)atoi(argv[6]) : 64);
    if (argc >= 5 && strcmp(argv[1], "bulk") == 0)
        return bulk(argv[2], argv[3], atol(argv[4]), argc > 5 ? (size_t)atoi(argv[5]) : 64);
    fprintf(stderr, "usage: loadgen rr HOST PORT CONNS SECONDS [LINE] | bulk HOST PORT MIB [LINE]\n");
    return 2;
}
