/*
 * echo_threaded.c -- the C baseline echo server: one thread per connection,
 * a memchr line reader (8 KiB buffer), one write per line, as CSAPP's
 * echoservert does with a fast rio_readlineb. TCP_NODELAY is left off (the
 * kernel default), like every server the benchmarks compare.
 * Usage: echo_threaded PORT   (0 picks one; prints "listening on port N")
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFSIZE 8192
#define MAXLINE 8192

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *serve(void *arg)
{
    int fd = (int)(long)arg;
    char buf[BUFSIZE], line[MAXLINE];
    size_t start = 0, end = 0, have = 0;
    for (;;) {
        if (start == end) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            start = 0;
            end = (size_t)n;
        }
        size_t room = MAXLINE - 1 - have;
        size_t span = end - start < room ? end - start : room;
        char *nl = memchr(buf + start, '\n', span);
        size_t take = nl ? (size_t)(nl - (buf + start)) + 1 : span;
        memcpy(line + have, buf + start, take);
        have += take;
        start += take;
        if (nl || have == MAXLINE - 1) {
            if (write_all(fd, line, have) < 0)
                break;
            have = 0;
        }
    }
    if (have)
        (void)write_all(fd, line, have);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((unsigned short)port);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 1024) < 0) {
        perror("bind/listen");
        return 1;
    }
    socklen_t len = sizeof addr;
    getsockname(lfd, (struct sockaddr *)&addr, &len);
    printf("listening on port %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                usleep(100000);
                continue;
            }
            perror("accept");
            return 1;
        }
        pthread_t tid;
        if (pthread_create(&tid, &attr, serve, (void *)(long)fd) != 0)
            close(fd);
    }
}
