# rio.pxd -- Cython's view of rio.h, the C core of csapp. It mirrors the
# header one declaration for one, in the same order; the documentation of
# each function is in rio.h. Every function here runs without the GIL
# (size_t and ssize_t are Cython built-in types).


cdef extern from "rio.h" nogil:
    int csapp_readn(int fd, void *buf, size_t n, size_t *done, int *err)
    int csapp_writen(int fd, const void *buf, size_t n, size_t *done, int *err)

    ctypedef struct csapp_rio_t:
        int fd
        unsigned char *buf
        size_t cap
        size_t bufsize
        size_t start
        size_t end

    void csapp_rio_init(csapp_rio_t *rp, int fd, size_t bufsize)
    void csapp_rio_release(csapp_rio_t *rp)
    size_t csapp_rio_buffered(const csapp_rio_t *rp)
    unsigned char *csapp_rio_data(const csapp_rio_t *rp)
    bint csapp_would_block(int err)
    size_t csapp_rio_line_length(const csapp_rio_t *rp, size_t limit, size_t *scanned)
    int csapp_rio_reserve(csapp_rio_t *rp, size_t room, int *err)
    ssize_t csapp_rio_fill(csapp_rio_t *rp, size_t want, int *err)
    void csapp_rio_shrink(csapp_rio_t *rp)
    void csapp_rio_consume(csapp_rio_t *rp, size_t n)
    int csapp_rio_unread(csapp_rio_t *rp, const void *data, size_t n, int *err)
    int csapp_rio_echo(csapp_rio_t *rp, int out_fd, size_t limit, int once, int pause,
                       size_t *echoed, int *err)
    enum:
        CSAPP_TURN_IDLE
        CSAPP_TURN_DRAINED
        CSAPP_TURN_BLOCKED
        CSAPP_TURN_BLOCKED_EOF
        CSAPP_TURN_CLOSED
    int csapp_rio_echo_turn(csapp_rio_t *rp, int writable, unsigned char *scratch,
                            size_t scratch_size, size_t limit, size_t high_water,
                            size_t *echoed, size_t *received, int *err)
    enum: CSAPP_READY_MAX
    int csapp_epoll_wait(int epfd, int *fds, unsigned *masks, int max, int timeout_ms, int *err)
    ssize_t csapp_find(const void *buf, size_t n, const void *sep, size_t seplen)
    size_t csapp_echo_cut(const void *buf, size_t n, int at_eof, size_t limit)
