# cython: language_level=3, embedsignature=True, embedsignature.format=python, binding=False, boundscheck=False, wraparound=False
"""Compiled RIO: CSAPP's robust I/O package, Cython over the C core in csrc/.

The twin of ``csapp._rio_py``: same names, results, exceptions and messages
(``docs/CONTRACT.md``). Every system call runs without the GIL; on EINTR Python's
signal handlers run and the call resumes unless one raised, so Ctrl-C always
works and a ``Rio`` never loses the bytes it already read.
"""

cimport cython
from cpython.buffer cimport (
    PyBUF_FULL_RO, PyBuffer_IsContiguous, PyBuffer_Release, PyObject_CheckBuffer,
    PyObject_GetBuffer,
)
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals
from cpython.number cimport PyNumber_Index
from cpython.pythread cimport (
    NOWAIT_LOCK, PY_LOCK_ACQUIRED, PyLockStatus, PyThread_acquire_lock,
    PyThread_allocate_lock, PyThread_free_lock, PyThread_release_lock,
    PyThread_type_lock,
)
from libc.errno cimport EBADF, EINTR, errno
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

import io
import os
import threading

cdef extern from "pythread.h":
    ctypedef long long PY_TIMEOUT_T
    PyLockStatus PyThread_acquire_lock_timed(
        PyThread_type_lock lock, PY_TIMEOUT_T microseconds, int intr_flag) nogil
    unsigned long PyThread_get_thread_ident()

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX
    long PyLong_AsLongAndOverflow(object, int *) except? -1

cdef extern from "unistd.h" nogil:
    int os_close "close"(int fd)

cdef extern from "poll.h" nogil:
    cdef struct pollfd:
        int fd
        short events
        short revents
    int poll(pollfd *fds, unsigned long nfds, int timeout)
    enum: POLLIN
    enum: POLLOUT

from rio cimport (
    CSAPP_TURN_BLOCKED, CSAPP_TURN_BLOCKED_EOF, CSAPP_TURN_CLOSED, CSAPP_TURN_DRAINED,
    CSAPP_TURN_IDLE,
    csapp_readn, csapp_rio_buffered, csapp_rio_consume, csapp_rio_data, csapp_rio_echo,
    CSAPP_READY_MAX, csapp_epoll_wait, csapp_rio_echo_turn, csapp_rio_fill,
    csapp_rio_init, csapp_rio_line_length, csapp_rio_release, csapp_rio_reserve,
    csapp_rio_t, csapp_rio_unread, csapp_would_block, csapp_writen,
)

from csapp import _shared
from csapp._shared import (
    MSG_BUFSIZE, MSG_CONTIGUOUS, MSG_ECHO_NEEDS_FD, MSG_MAXLEN, MSG_NEGATIVE_N,
    MSG_READ_LENGTH, MSG_RECV_COUNT, MSG_REENTRANT, MSG_SCRATCH_EMPTY, MSG_TIMED_OUT,
    check_timeout, msg_not_dict,
    msg_no_pickle, msg_not_bytes_like, msg_not_open, msg_not_rio, msg_not_writable,
    poll_milliseconds, rio_repr,
)

__all__ = list(_shared.RIO_NAMES)

RIO_BUFSIZE = _shared.RIO_BUFSIZE
MAXLINE = _shared.MAXLINE

# The shared sizes as C values (csapp/_shared.py is their one source).
cdef size_t C_RIO_BUFSIZE = _shared.RIO_BUFSIZE
cdef Py_ssize_t C_MAXLINE = _shared.MAXLINE
cdef size_t LINE_LIMIT = _shared.LINE_LIMIT
cdef Py_ssize_t MAX_BUFSIZE = _shared.MAX_BUFSIZE
cdef size_t FIRST_CHUNK = _shared.FIRST_CHUNK
cdef size_t MAX_CHUNK = _shared.MAX_CHUNK
cdef int ECHO_EOF = _shared.ECHO_EOF
cdef int ECHO_CHUNK = _shared.ECHO_CHUNK
cdef int ECHO_BLOCKED = _shared.ECHO_BLOCKED
cdef int TURN_IDLE = _shared.TURN_IDLE
cdef int TURN_FAILED = _shared.TURN_FAILED
cdef int TURN_NOT_SERVED = _shared.TURN_NOT_SERVED
assert (CSAPP_TURN_IDLE, CSAPP_TURN_DRAINED, CSAPP_TURN_BLOCKED, CSAPP_TURN_BLOCKED_EOF,
        CSAPP_TURN_CLOSED) == (_shared.TURN_IDLE, _shared.TURN_DRAINED, _shared.TURN_BLOCKED,
                               _shared.TURN_BLOCKED_EOF, _shared.TURN_CLOSED)

# Python runs signal handlers in the main thread only: there, loops that keep
# reading in C hand control back between system calls (csapp_rio_echo's
# pause). After fork the forking thread is the child's main thread.
cdef unsigned long main_thread_ident = threading.main_thread().ident


def _after_fork_in_child():
    global main_thread_ident
    main_thread_ident = PyThread_get_thread_ident()


os.register_at_fork(after_in_child=_after_fork_in_child)


cdef inline bint in_main_thread():
    return PyThread_get_thread_ident() == main_thread_ident


cdef enum:
    INT_MAX_FD = 2147483647

cdef enum RioState:
    UNINIT = 0
    OPEN = 1
    CLOSED = 2

assert (UNINIT, OPEN, CLOSED) == (_shared.UNINIT, _shared.OPEN, _shared.CLOSED)

cdef size_t UNBOUNDED = <size_t>PY_SSIZE_T_MAX
# Default arguments as objects, so the hot paths can skip converting them.
cdef object DEFAULT_MAXLEN = _shared.MAXLINE
cdef object DEFAULT_SIZE = -1


# ------------------------------------------------------------------ helpers

cdef int raise_errno(int err) except -1:
    """Raise the OSError subclass for err, as os.read would."""
    raise OSError(err, os.strerror(err))


cdef inline double monotonic_seconds() noexcept nogil:
    cdef timespec now
    clock_gettime(CLOCK_MONOTONIC, &now)
    return <double>now.tv_sec + <double>now.tv_nsec * 1e-9


cdef inline Py_ssize_t as_size(object n) except? -2:
    """An index as Py_ssize_t, saturated at +-PY_SSIZE_T_MAX (no OverflowError)."""
    cdef int overflow = 0
    cdef long value
    if type(n) is not int:
        n = PyNumber_Index(n)
    value = PyLong_AsLongAndOverflow(n, &overflow)
    if overflow > 0 or value > PY_SSIZE_T_MAX:
        return PY_SSIZE_T_MAX
    if overflow < 0 or value < -PY_SSIZE_T_MAX:
        return -PY_SSIZE_T_MAX
    return <Py_ssize_t>value


cdef int check_fd(object fd) except -1:
    """A descriptor as a C int; one that cannot exist is EBADF, as the kernel says."""
    cdef Py_ssize_t value = as_size(fd)
    if value < 0 or value > INT_MAX_FD:
        raise_errno(EBADF)
    return <int>value


cdef Py_ssize_t size_or_all(object n) except? -2:
    """None → -1; other values as io.BufferedReader.read takes them."""
    if n is None:
        return -1
    cdef Py_ssize_t value = as_size(n)
    if value < -1:
        raise ValueError(MSG_READ_LENGTH)
    return value


cdef int get_bytes_view(object obj, Py_buffer *view, bint writable) except -1:
    """A contiguous view of any bytes-like object, no copy; checks as _rio_py does."""
    if not PyObject_CheckBuffer(obj):
        raise TypeError(msg_not_bytes_like(obj))
    PyObject_GetBuffer(obj, view, PyBUF_FULL_RO)
    if writable and view.readonly:
        PyBuffer_Release(view)
        raise TypeError(msg_not_writable(obj))
    if not PyBuffer_IsContiguous(view, b'C'):
        PyBuffer_Release(view)
        raise TypeError(MSG_CONTIGUOUS)
    return 0


cdef int check_signals_during_write(size_t done) except -1:
    """Run signal handlers; one that raises gets characters_written = done."""
    try:
        PyErr_CheckSignals()
    except BaseException as exc:
        exc.characters_written = done
        raise
    return 0


# --------------------------------------------------------------- unbuffered

def rio_readn(fd, n):
    """Read n bytes, short only at EOF (CSAPP rio_readn)."""
    cdef int cfd = check_fd(fd)
    cdef Py_ssize_t want = as_size(n)
    if want < 0:
        raise ValueError(MSG_NEGATIVE_N)
    if want == 0:
        return b""
    cdef size_t total = <size_t>want
    cdef size_t cap = total if total < FIRST_CHUNK else FIRST_CHUNK
    cdef size_t done = 0, limit
    cdef int rc, err = 0
    cdef unsigned char *buf = <unsigned char *>malloc(cap)
    cdef unsigned char *grown
    if buf == NULL:
        raise MemoryError()
    try:
        while True:
            limit = cap if cap < total else total
            with nogil:
                rc = csapp_readn(cfd, buf, limit, &done, &err)
            if rc < 0:
                if err == EINTR:
                    PyErr_CheckSignals()
                    continue
                if csapp_would_block(err) and done > 0:
                    break
                raise_errno(err)
            if done < limit or done == total:
                break  # EOF, or all n bytes
            # The stream has more: grow, doubling while the data keeps coming.
            cap = cap * 2 if cap < MAX_CHUNK else cap + MAX_CHUNK
            if cap > total:
                cap = total
            grown = <unsigned char *>realloc(buf, cap)
            if grown == NULL:
                raise MemoryError()
            buf = grown
        return PyBytes_FromStringAndSize(<char *>buf, done)
    finally:
        free(buf)


def rio_readinto(fd, buffer):
    """Fill buffer from fd; the count is short only at EOF (CSAPP rio_readn)."""
    cdef int cfd = check_fd(fd)
    cdef Py_buffer view
    cdef size_t done = 0
    cdef int rc, err = 0
    get_bytes_view(buffer, &view, True)
    try:
        while True:
            with nogil:
                rc = csapp_readn(cfd, view.buf, <size_t>view.len, &done, &err)
            if rc == 0:
                return done
            if err == EINTR:
                PyErr_CheckSignals()
                continue
            if csapp_would_block(err) and done > 0:
                return done
            raise_errno(err)
    finally:
        PyBuffer_Release(&view)


def rio_writen(fd, data):
    """Write every byte of data (CSAPP rio_writen); returns len(data) in bytes.
    If it raises part-way, the exception's characters_written says how many
    bytes went out."""
    cdef int cfd = check_fd(fd)
    cdef Py_buffer view
    cdef size_t done = 0
    cdef int rc, err = 0
    get_bytes_view(data, &view, False)
    try:
        while True:
            with nogil:
                rc = csapp_writen(cfd, view.buf, <size_t>view.len, &done, &err)
            if rc == 0:
                return view.len
            if err == EINTR:
                check_signals_during_write(done)
                continue
            exc = OSError(err, os.strerror(err))
            exc.characters_written = done
            raise exc
    finally:
        PyBuffer_Release(&view)


# ----------------------------------------------------------------- buffered

cdef class Rio:
    """A read buffer bound to a descriptor (CSAPP rio_t); Rio(fd) is
    rio_readinitb. The descriptor is not owned unless closefd=True. Every read
    method may be interleaved with the others; no byte is lost when a signal
    handler raises or a non-blocking descriptor would block: what was already
    read stays buffered for the next call."""

    cdef csapp_rio_t r
    cdef RioState state
    cdef bint closefd
    cdef PyThread_type_lock lock
    cdef unsigned long owner
    cdef double timeout        # seconds; -1: none (EAGAIN raises BlockingIOError)
    cdef object sock           # the socket object of csapp.makefile, or None
    cdef object recv_into      # sock.recv_into when reads must go through it, or None
    cdef bytearray scratch     # what recv_into fills, copied into the buffer
    cdef object __weakref__

    def __cinit__(self, *args, **kwargs):
        self.state = UNINIT
        self.closefd = False
        self.owner = 0
        self.timeout = -1.0
        csapp_rio_init(&self.r, -1, C_RIO_BUFSIZE)
        self.lock = PyThread_allocate_lock()
        if self.lock == NULL:
            raise MemoryError()

    def __dealloc__(self):
        cdef int fd = self.r.fd
        csapp_rio_release(&self.r)
        if self.lock != NULL:
            PyThread_free_lock(self.lock)
            self.lock = NULL
        if self.state == OPEN and self.closefd:
            self.state = CLOSED
            with nogil:
                os_close(fd)

    def __init__(self, fd, bufsize=RIO_BUFSIZE, *, closefd=False, timeout=None):
        cdef int cfd
        cdef Py_ssize_t size
        cdef double seconds
        self.enter_any()
        try:
            self.state = UNINIT
            csapp_rio_release(&self.r)
            cfd = check_fd(fd)
            size = as_size(bufsize)
            if size < 1 or size > MAX_BUFSIZE:
                raise ValueError(MSG_BUFSIZE)
            seconds = check_timeout(timeout)
            self.closefd = bool(closefd)
            self.timeout = seconds
            self.sock = None
            self.recv_into = None
            self.scratch = None
            csapp_rio_init(&self.r, cfd, <size_t>size)
            self.state = OPEN
        finally:
            self.exit()

    def _bind_socket(self, sock, via_recv):
        """Bind to the socket object whose descriptor this Rio reads (for
        csapp.makefile): a read that would block waits up to
        sock.gettimeout(); with via_recv every read is sock.recv_into (TLS,
        socket-like objects), never the descriptor."""
        recv_into = sock.recv_into if via_recv else None
        self.enter()
        try:
            self.sock = sock
            self.recv_into = recv_into
        finally:
            self.exit()

    cdef int wait_readable(self) except -1:
        """After EAGAIN: wait until the descriptor is readable, up to the
        timeout (the socket's, for a bound Rio), with poll(2) and without the
        GIL. 1: read again; 0: no wait applies (no timeout, or 0: the caller
        raises BlockingIOError); TimeoutError when the time ran out."""
        cdef double seconds = self.timeout
        cdef double deadline = 0.0
        cdef double left
        cdef int ms, rc, err = 0
        cdef pollfd pfd
        if self.sock is not None:
            value = self.sock.gettimeout()
            if value is None:
                seconds = -1.0
            else:
                seconds = value
                if seconds <= 0:
                    return 0
        elif seconds <= 0:
            return 0
        if seconds > 0:
            deadline = monotonic_seconds() + seconds
        pfd.fd = self.r.fd
        pfd.events = POLLIN
        while True:
            ms = -1
            if seconds > 0:
                left = deadline - monotonic_seconds()
                ms = poll_milliseconds(left) if left > 0 else 0
            with nogil:
                rc = poll(&pfd, 1, ms)
                if rc < 0:
                    err = errno
            if rc > 0:
                return 1
            if rc == 0:
                raise TimeoutError(MSG_TIMED_OUT)
            if err != EINTR:
                raise_errno(err)
            PyErr_CheckSignals()

    cdef Py_ssize_t fill_by_recv(self, size_t want) except -1:
        """One sock.recv_into of at most want bytes (no more than the free
        space), copied in after the buffer (csapp_rio_fill through the socket
        object). A bytearray of our own is what recv_into sees: whatever it
        keeps of it, the buffer itself is never handed out."""
        cdef size_t size = self.r.cap - self.r.end
        cdef Py_ssize_t got
        if want < size:
            size = want
        if self.scratch is None or <size_t>len(self.scratch) < size:
            self.scratch = bytearray(size)
        with memoryview(self.scratch) as view:
            got = as_size(self.recv_into(view[:size]))
        if got < 0 or <size_t>got > size or <size_t>got > <size_t>len(self.scratch):
            raise OSError(MSG_RECV_COUNT)
        memcpy(self.r.buf + self.r.end, PyByteArray_AS_STRING(self.scratch), <size_t>got)
        self.r.end += <size_t>got
        return got

    # -- the lock: one call at a time; a signal handler re-entering is refused

    cdef inline int enter_any(self) except -1:
        cdef unsigned long me = PyThread_get_thread_ident()
        if not PyThread_acquire_lock(self.lock, NOWAIT_LOCK):
            if self.owner == me:
                raise RuntimeError(MSG_REENTRANT)
            self.wait_for_lock()
        self.owner = me
        return 0

    cdef int wait_for_lock(self) except -1:
        cdef PyLockStatus status
        while True:
            with nogil:
                status = PyThread_acquire_lock_timed(self.lock, -1, 1)
            if status == PY_LOCK_ACQUIRED:
                return 0
            PyErr_CheckSignals()

    cdef inline int enter(self) except -1:
        self.enter_any()
        if self.state != OPEN:
            self.exit()
            self.raise_not_open()
        return 0

    cdef inline void exit(self) noexcept:
        self.owner = 0
        PyThread_release_lock(self.lock)

    cdef int raise_not_open(self) except -1:
        raise ValueError(msg_not_open(self.state))

    cdef inline int check_open(self) except -1:
        if self.state != OPEN:
            self.raise_not_open()
        return 0

    # -- the buffer (called with the lock held)

    cdef Py_ssize_t fill(self, size_t want) except -1:
        """One read(2) into the buffer; its count, 0 at EOF.

        It asks for max(want, bufsize) bytes, but no more than fit: the
        pending bytes move to the front and the read gets the free space of
        the buffer (bufsize - pending), which grows only when it is full of
        pending bytes or want is more than bufsize (csapp_rio_reserve). The
        pure-Python twin asks for the same sizes. EINTR runs the signal
        handlers and retries; if one raises, or on any error, what is
        buffered stays buffered."""
        cdef ssize_t got
        cdef int err = 0
        cdef size_t room = want if want > self.r.bufsize else 1
        # Before a read that may block: run any handler whose signal arrived
        # while the previous read was returning data (it would else wait for
        # the next signal). What is buffered stays buffered if one raises.
        PyErr_CheckSignals()
        if want < self.r.bufsize:
            want = self.r.bufsize
        if csapp_rio_reserve(&self.r, room, &err) < 0:
            raise MemoryError()
        if self.recv_into is not None:
            return self.fill_by_recv(want)
        while True:
            with nogil:
                got = csapp_rio_fill(&self.r, want, &err)
            if got >= 0:
                return got
            if err == EINTR:
                PyErr_CheckSignals()
                continue
            if csapp_would_block(err) and self.wait_readable():
                continue
            raise_errno(err)

    cdef bytes line(self, size_t limit):
        """The next line of at most limit bytes (CSAPP rio_readlineb's loop)."""
        cdef size_t scanned = 0
        cdef size_t n = csapp_rio_line_length(&self.r, limit, &scanned)
        while n == 0:
            if self.fill(0) == 0:  # EOF: whatever is buffered, maybe nothing
                return take(self, csapp_rio_buffered(&self.r))
            n = csapp_rio_line_length(&self.r, limit, &scanned)
        return take(self, n)

    cdef bytes read_bytes(self, Py_ssize_t n):
        """n bytes, short only at EOF; n < 0 reads to EOF."""
        cdef size_t avail = csapp_rio_buffered(&self.r)
        cdef size_t step = FIRST_CHUNK
        cdef size_t need
        if n >= 0 and <size_t>n <= avail:
            return take(self, <size_t>n)
        while n < 0 or avail < <size_t>n:
            need = UNBOUNDED if n < 0 else <size_t>n - avail
            if need > step:
                need = step
            if self.fill(need) == 0:
                break
            avail = csapp_rio_buffered(&self.r)
            if step < MAX_CHUNK:
                step *= 2
        return take(self, avail if n < 0 or avail < <size_t>n else <size_t>n)

    cdef Py_ssize_t read_into(self, Py_buffer *view) except -1:
        """Fill view: buffered bytes first, then reads straight into it."""
        cdef unsigned char *dest = <unsigned char *>view.buf
        cdef size_t total = <size_t>view.len
        cdef size_t got = csapp_rio_buffered(&self.r)
        cdef size_t done
        cdef int rc, err = 0
        if got > total:
            got = total
        if got:
            memcpy(dest, csapp_rio_data(&self.r), got)
            csapp_rio_consume(&self.r, got)
        try:
            while got < total:
                if total - got >= self.r.bufsize and self.recv_into is None:
                    # Large: read straight into the caller's buffer.
                    done = got
                    with nogil:
                        rc = csapp_readn(self.r.fd, dest, total, &done, &err)
                    got = done
                    if rc == 0:
                        break
                    if err == EINTR:
                        PyErr_CheckSignals()
                        continue
                    if csapp_would_block(err) and self.wait_readable():
                        continue
                    raise_errno(err)
                else:
                    if self.fill(0) == 0:
                        break
                    done = csapp_rio_buffered(&self.r)
                    if done > total - got:
                        done = total - got
                    memcpy(dest + got, csapp_rio_data(&self.r), done)
                    csapp_rio_consume(&self.r, done)
                    got += done
        except BaseException:
            # Do not lose what was read: it goes back in front of the buffer.
            if got and csapp_rio_unread(&self.r, dest, got, &err) < 0:
                raise MemoryError()
            raise
        return got

    # -- CSAPP's buffered reads

    def readlineb(self, maxlen=DEFAULT_MAXLEN):
        """The next line, at most maxlen - 1 bytes (CSAPP rio_readlineb)."""
        cdef Py_ssize_t m = C_MAXLINE if maxlen is DEFAULT_MAXLEN else as_size(maxlen)
        if m < 2:
            raise ValueError(MSG_MAXLEN)
        fast = line_unlocked(self, <size_t>(m - 1))
        if fast is not None:
            return fast
        self.enter()
        try:
            return self.line(<size_t>(m - 1))
        finally:
            self.exit()

    def readnb(self, n):
        """Up to n bytes, short only at EOF (CSAPP rio_readnb)."""
        cdef Py_ssize_t want = as_size(n)
        if want < 0:
            raise ValueError(MSG_NEGATIVE_N)
        self.enter()
        try:
            return self.read_bytes(want)
        finally:
            self.exit()

    def readinto(self, buffer):
        """Fill buffer; the count is short only at EOF (CSAPP rio_readnb)."""
        cdef Py_buffer view
        get_bytes_view(buffer, &view, True)
        try:
            self.enter()
            try:
                return self.read_into(&view)
            finally:
                self.exit()
        finally:
            PyBuffer_Release(&view)

    # -- io.BufferedIOBase's reads

    def readline(self, size=DEFAULT_SIZE):
        """The next line, at most size bytes when size >= 0 (io semantics)."""
        cdef Py_ssize_t limit = -1 if size is None or size is DEFAULT_SIZE else as_size(size)
        if limit > 0:
            fast = line_unlocked(self, <size_t>limit)
            if fast is not None:
                return fast
        elif limit < 0:
            fast = line_unlocked(self, UNBOUNDED)
            if fast is not None:
                return fast
        self.enter()
        try:
            if limit == 0:
                return b""
            return self.line(<size_t>limit if limit > 0 else UNBOUNDED)
        finally:
            self.exit()

    def read(self, n=-1):
        """n bytes, short only at EOF; read() reads to EOF."""
        cdef Py_ssize_t want = size_or_all(n)
        self.enter()
        try:
            return self.read_bytes(want)
        finally:
            self.exit()

    def read1(self, n=-1):
        """Up to n bytes with at most one read system call."""
        cdef Py_ssize_t want = size_or_all(n)
        cdef size_t avail
        self.enter()
        try:
            if want == 0:
                return b""
            avail = csapp_rio_buffered(&self.r)
            if avail == 0:
                self.fill(MAX_CHUNK if want > <Py_ssize_t>MAX_CHUNK else <size_t>want if want > 0 else 0)
                avail = csapp_rio_buffered(&self.r)
            return take(self, avail if want < 0 or avail < <size_t>want else <size_t>want)
        finally:
            self.exit()

    def readinto1(self, buffer):
        """Fill buffer with at most one read system call; the count (0 at EOF)."""
        cdef Py_buffer view
        cdef size_t avail
        get_bytes_view(buffer, &view, True)
        try:
            self.enter()
            try:
                if view.len == 0:
                    return 0
                avail = csapp_rio_buffered(&self.r)
                if avail == 0:
                    self.fill(MAX_CHUNK if <size_t>view.len > MAX_CHUNK else <size_t>view.len)
                    avail = csapp_rio_buffered(&self.r)
                if avail > <size_t>view.len:
                    avail = <size_t>view.len
                if avail:
                    memcpy(view.buf, csapp_rio_data(&self.r), avail)
                    csapp_rio_consume(&self.r, avail)
                return avail
            finally:
                self.exit()
        finally:
            PyBuffer_Release(&view)

    def peek(self, n=0):
        """The buffered bytes, after at most one read if none are; none consumed."""
        as_size(n)
        self.enter()
        try:
            if csapp_rio_buffered(&self.r) == 0:
                self.fill(0)
            return PyBytes_FromStringAndSize(
                <char *>csapp_rio_data(&self.r),
                <Py_ssize_t>csapp_rio_buffered(&self.r))
        finally:
            self.exit()

    def readlines(self, hint=-1):
        """Lines as iteration gives them, until their total reaches hint. One
        call under the lock: if it raises part-way (EAGAIN, a signal handler),
        the lines it took go back in front of the buffer, nothing lost."""
        cdef Py_ssize_t limit = -1 if hint is None else as_size(hint)
        cdef Py_ssize_t total = 0
        cdef list lines = []
        cdef bytes line
        self.enter()
        try:
            while True:
                line = self.line(UNBOUNDED)
                if not line:
                    return lines
                lines.append(line)
                total += len(line)
                if 0 < limit <= total:
                    return lines
        except BaseException:
            self.give_back(lines)
            raise
        finally:
            self.exit()

    cdef int give_back(self, list lines) except -1:
        """Put lines taken by this call back in front of the buffer."""
        cdef bytes taken
        cdef int err = 0
        if lines:
            taken = b"".join(lines)
            if csapp_rio_unread(&self.r, <const char *>taken, len(taken), &err) < 0:
                raise MemoryError()
        return 0

    def __iter__(self):
        self.enter()
        self.exit()
        return self

    def __next__(self):
        cdef bytes line = line_unlocked(self, UNBOUNDED)
        if line is not None:
            return line
        self.enter()
        try:
            line = self.line(UNBOUNDED)
        finally:
            self.exit()
        if not line:
            raise StopIteration
        return line

    # -- the rest of the file protocol

    @property
    def buffered(self):
        """Bytes read from the kernel and not yet returned."""
        self.check_open()
        return csapp_rio_buffered(&self.r)

    @property
    def closed(self):
        if self.state == UNINIT:
            raise ValueError(msg_not_open(UNINIT))
        return self.state == CLOSED

    def fileno(self):
        """The descriptor."""
        self.check_open()
        return self.r.fd

    @property
    def name(self):
        """The descriptor, -1 once closed (as a socket's makefile reader says)."""
        return self.r.fd if self.state == OPEN else -1

    @property
    def mode(self):
        """"rb": a Rio reads bytes."""
        return "rb"

    def readable(self):
        """True: a Rio reads."""
        self.check_open()
        return True

    def writable(self):
        """False: a Rio only reads."""
        self.check_open()
        return False

    def seekable(self):
        """False: a Rio reads a stream."""
        self.check_open()
        return False

    def isatty(self):
        """Whether the descriptor is a terminal."""
        self.check_open()
        return os.isatty(self.r.fd)

    def flush(self):
        """Nothing to flush: a Rio only reads."""
        self.check_open()

    def close(self):
        """Drop the buffer; close the descriptor only if closefd=True."""
        cdef int fd
        self.enter_any()
        try:
            if self.state == UNINIT:
                raise ValueError(msg_not_open(UNINIT))
            if self.state == OPEN:
                self.state = CLOSED
                fd = self.r.fd
                csapp_rio_release(&self.r)
                self.sock = self.recv_into = self.scratch = None
                if self.closefd:
                    os.close(fd)
        finally:
            self.exit()

    def __enter__(self):
        self.check_open()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __sizeof__(self):
        return object.__sizeof__(self) + self.r.cap

    def __repr__(self):
        return rio_repr(self, self.state, self.r.fd, csapp_rio_buffered(&self.r))

    def __reduce_ex__(self, protocol):
        raise TypeError(msg_no_pickle(self))


# Hot paths as plain functions: no virtual call, inlined by the C compiler.

cdef inline bytes take(Rio self, size_t n):
    """The next n buffered bytes as bytes, consumed (the lock is held, or the GIL
    alone protects the unlocked path)."""
    cdef bytes out = PyBytes_FromStringAndSize(
        <char *>csapp_rio_data(&self.r), <Py_ssize_t>n)
    csapp_rio_consume(&self.r, n)
    return out


cdef inline bytes line_unlocked(Rio self, size_t limit):
    """The next line if it is wholly buffered, taken without the lock; else None.

    Safe under the GIL: this path makes no call that can release it, and it
    runs only when no other call is inside (owner == 0). A call that holds the
    lock keeps owner set even while it waits in read(2) without the GIL, and a
    signal handler re-entering sees owner set too."""
    cdef size_t scanned = 0
    cdef size_t n
    if self.state != OPEN or self.owner != 0:
        return None
    n = csapp_rio_line_length(&self.r, limit, &scanned)
    if n == 0:
        return None
    return take(self, n)


io.BufferedIOBase.register(Rio)


def _rio_echo(rp, out_fd, once=False):
    """CSAPP echo's loop in C (csapp_rio_echo), the GIL released: every
    complete line rp buffers is written back to out_fd, all of them in one
    write (csapp._shared.echo_cut), until EOF. Returns (bytes echoed,
    ECHO_EOF) at EOF; with once, (bytes echoed, ECHO_CHUNK) after the first
    write; (bytes echoed, ECHO_BLOCKED) when a read or write timed out or
    would block. Nothing is lost then: what is not echoed yet stays in rp
    for the next call. Other errors raise OSError; a signal handler that
    raises loses only the count. Used by csapp.echo; not public API."""
    cdef Rio r = check_rio(rp)
    cdef int cfd = check_fd(out_fd)
    if r.recv_into is not None:
        raise ValueError(MSG_ECHO_NEEDS_FD)
    cdef bint one = bool(once)
    cdef bint pause = in_main_thread()
    cdef size_t echoed = 0
    cdef int rc, err = 0
    r.enter()
    try:
        while True:
            with nogil:
                rc = csapp_rio_echo(&r.r, cfd, LINE_LIMIT, one, pause, &echoed, &err)
            if rc == 0:
                return echoed, ECHO_EOF
            if rc == 1:
                return echoed, ECHO_CHUNK
            if err == EINTR:
                PyErr_CheckSignals()
            elif csapp_would_block(err):
                return echoed, ECHO_BLOCKED
            else:
                raise_errno(err)
    finally:
        r.exit()


cdef struct Turn:
    csapp_rio_t *rp       # NULL: the descriptor is not a connection's
    int writable          # its mask has POLLOUT
    int state             # a CSAPP_TURN_* value, or -1 with err
    int err
    size_t echoed
    size_t received


cdef csapp_rio_t *take_for_turn(object rio, list served, unsigned long me) except NULL:
    """A connection's Rio for a turn: checked, its lock taken (as enter()
    takes it) and the Rio added to served, whose locks the caller releases."""
    cdef Rio r = <Rio>rio if type(rio) is Rio else check_rio(rio)
    if r.recv_into is not None:
        raise ValueError(MSG_ECHO_NEEDS_FD)
    if PyThread_acquire_lock(r.lock, NOWAIT_LOCK):  # enter(), the common case
        r.owner = me
        if r.state != OPEN:
            r.exit()
            r.raise_not_open()
    else:
        r.enter()  # waits for another thread; refuses a re-entry
    served.append(r)
    return &r.r


cdef void run_turns(Turn *turns, Py_ssize_t count, Py_buffer *view, size_t water) noexcept nogil:
    """The turns of every Turn with a Rio, one after another (no GIL)."""
    cdef Py_ssize_t i
    cdef Turn *turn
    for i in range(count):
        turn = &turns[i]
        if turn.rp != NULL:
            turn.state = csapp_rio_echo_turn(
                turn.rp, turn.writable, <unsigned char *>view.buf, <size_t>view.len,
                LINE_LIMIT, water, &turn.echoed, &turn.received, &turn.err)


cdef inline void clear_turn(Turn *turn) noexcept:
    memset(turn, 0, sizeof(Turn))  # rp NULL: not a connection's, until a Rio is found


cdef inline object turn_row(Turn *turn, object fd, object mask, bint every):
    """The row of one turn for Python, or None when it needs none."""
    if turn.rp == NULL:
        return (fd, TURN_NOT_SERVED, mask)
    if turn.state < 0:
        return (fd, TURN_FAILED, turn.err)
    if turn.state != TURN_IDLE or (every and (turn.echoed or turn.received)):
        return (fd, turn.state, turn.echoed)
    return None


cdef int serve_turns(Turn *turns, Py_ssize_t count, list pairs, int *fds, unsigned *masks,
                     dict rios, Py_buffer *view, size_t water) except -1:
    """The turns of count ready descriptors, each (fd, mask) of pairs or,
    with pairs None, of fds and masks: every Rio of rios checked and locked,
    then the turns without the GIL, then the locks released."""
    cdef Py_ssize_t i
    cdef Turn *turn
    cdef Rio r
    cdef list served = []   # the Rios whose locks are held
    cdef unsigned long me = PyThread_get_thread_ident()
    try:
        for i in range(count):
            if pairs is None:
                fd = fds[i]
            else:
                fd, mask = pairs[i]
            turn = &turns[i]
            clear_turn(turn)
            rio = rios.get(fd)
            if rio is not None:
                turn.rp = take_for_turn(rio, served, me)
                if pairs is None:
                    turn.writable = (masks[i] & POLLOUT) != 0
                else:
                    turn.writable = (as_size(mask) & POLLOUT) != 0
        with nogil:
            run_turns(turns, count, view, water)
    finally:
        for r in served:
            r.exit()
    return 0


cdef Py_ssize_t check_turn_arguments(object rios, object scratch, object high_water,
                                     Py_buffer *view) except -1:
    """The checks every turn's arguments pass; high_water as a size (0 if
    negative); scratch's view taken (the caller releases it)."""
    if not isinstance(rios, dict):
        raise TypeError(msg_not_dict(rios))
    cdef Py_ssize_t water = as_size(high_water)
    get_bytes_view(scratch, view, True)
    if view.len == 0:
        PyBuffer_Release(view)
        raise ValueError(MSG_SCRATCH_EMPTY)
    return water if water > 0 else 0


def _rio_echo_turns(events, rios, scratch, high_water, report_all=False):
    """An event server's work for the descriptors epoll found ready: for each
    (fd, mask) of events whose fd is a key of rios (fd -> Rio over a
    non-blocking socket), one turn of the C core's csapp_rio_echo_turn
    (CSAPP echoservers' check_clients) on that Rio: output that waited goes
    first (all the Rio holds when the mask has POLLOUT), then one read of
    len(scratch) bytes into scratch, and every complete line back in one
    write; what must wait stays in the Rio, and a Rio left with nothing holds
    no buffer. While output waits, input is read only below high_water
    buffered bytes. All turns run in C without the GIL, each Rio's lock held.
    Returns rows (fd, state, count) in the order of events: (fd,
    TURN_NOT_SERVED, mask) for others; (fd, TURN_FAILED, errno) for a
    connection whose read or write failed; (fd, state, bytes written) for
    every other state but TURN_IDLE (TURN_DRAINED: all the turn began
    holding went out, so stop waiting for POLLOUT), and with report_all for
    an idle turn that moved a byte too. Every argument is checked before any
    turn. Used by csapp.servers.event; not public API."""
    if not isinstance(rios, dict):
        raise TypeError(msg_not_dict(rios))
    cdef list pairs = list(events)  # a copy: nothing can change it under the loop
    cdef Py_ssize_t count = len(pairs), i
    cdef bint every = bool(report_all)
    cdef Py_buffer view
    cdef Py_ssize_t water = check_turn_arguments(rios, scratch, high_water, &view)
    cdef Turn *turns
    cdef list rows = []
    turns = <Turn *>malloc((count + 1) * sizeof(Turn))
    if turns == NULL:
        PyBuffer_Release(&view)
        raise MemoryError()
    try:
        serve_turns(turns, count, pairs, NULL, NULL, rios, &view, <size_t>water)
        for i in range(count):
            fd, mask = pairs[i]
            row = turn_row(&turns[i], fd, mask, every)
            if row is not None:
                rows.append(row)
    finally:
        PyBuffer_Release(&view)
        free(turns)
    return rows


cdef int wait_milliseconds(object timeout) except? -2:
    """select.epoll.poll's timeout (seconds; None or negative: no deadline)
    as epoll_wait's milliseconds, rounded up."""
    if timeout is None:
        return -1
    seconds = float(timeout)
    if seconds < 0:
        return -1
    if seconds == 0:
        return 0
    return poll_milliseconds(seconds)


if CSAPP_READY_MAX != _shared.READY_MAX:  # rio.h and csapp/_shared.py say the same
    raise ImportError(f"rio.h's CSAPP_READY_MAX is not csapp._shared.READY_MAX")


cdef long long monotonic_ns() noexcept nogil:
    cdef timespec now
    clock_gettime(CLOCK_MONOTONIC, &now)
    return <long long>now.tv_sec * 1000000000 + now.tv_nsec


cdef int milliseconds_until(long long deadline) noexcept nogil:
    """The whole milliseconds, rounded up, from now until deadline
    (monotonic_ns); 0 once it has passed."""
    cdef long long left = deadline - monotonic_ns()
    if left <= 0:
        return 0
    return <int>((left + 999999) // 1000000)


def _rio_echo_wait(epoll, rios, scratch, high_water, timeout=None, report_all=False):
    """An event server's loop until Python is needed: epoll.poll(timeout)
    and _rio_echo_turns over what it returned, again while no turn needs a
    row, in C: epoll_wait and the turns run without the GIL, and the ready
    list never becomes Python objects. epoll is a select.epoll (at most
    READY_MAX = 1023 events a wait); the other arguments and the rows are
    _rio_echo_turns', for the last wait's events. Returns no rows when the
    timeout (seconds; None or negative: none) passed, or when a signal
    interrupted a wait; signal handlers run after every wait. Every argument
    is checked before the first wait. Used by csapp.servers.event; not
    public API."""
    cdef bint every = bool(report_all)
    cdef int ms = wait_milliseconds(timeout)
    cdef int epfd = check_fd(epoll.fileno())
    cdef Py_buffer view
    cdef size_t water = <size_t>check_turn_arguments(rios, scratch, high_water, &view)
    cdef dict table = <dict>rios
    cdef int fds[CSAPP_READY_MAX]
    cdef unsigned masks[CSAPP_READY_MAX]
    cdef int count, err = 0, i
    # A wait never ends early: the deadline in nanoseconds, ms rounded up.
    cdef long long deadline = monotonic_ns() + <long long>ms * 1000000 if ms > 0 else 0
    cdef Turn *turns = NULL
    cdef Turn *turn
    cdef list rows = []
    try:
        turns = <Turn *>malloc(CSAPP_READY_MAX * sizeof(Turn))
        if turns == NULL:
            raise MemoryError()
        while True:
            with nogil:
                count = csapp_epoll_wait(epfd, fds, masks, CSAPP_READY_MAX, ms, &err)
            PyErr_CheckSignals()
            if count < 0:
                if err == EINTR:
                    return rows
                raise_errno(err)
            if count == 0:
                if ms > 0:  # the kernel's timeout; wait on if the deadline is not reached
                    ms = milliseconds_until(deadline)
                    if ms > 0:
                        continue
                return rows
            if count > CSAPP_READY_MAX:  # never: csapp_epoll_wait's own bound
                count = CSAPP_READY_MAX
            serve_turns(turns, count, None, fds, masks, table, &view, water)
            for i in range(count):
                turn = &turns[i]
                # turn_row's test, made first: a turn without a row makes no object
                if turn.rp == NULL or turn.state != TURN_IDLE or (
                        every and (turn.echoed or turn.received)):
                    rows.append(turn_row(turn, fds[i], masks[i], every))
            if rows:
                return rows
            if ms > 0:
                ms = milliseconds_until(deadline)
                if ms == 0:
                    return rows
            elif ms == 0:
                return rows
    finally:
        PyBuffer_Release(&view)
        free(turns)


# ------------------------------------------------------- CSAPP spellings

def rio_readinitb(fd):
    """A new Rio over fd (CSAPP rio_readinitb)."""
    return Rio(fd)


cdef Rio check_rio(object rp):
    if not isinstance(rp, Rio):
        raise TypeError(msg_not_rio(rp))
    return <Rio>rp


def rio_readlineb(rp, maxlen=MAXLINE):
    """CSAPP rio_readlineb: rp.readlineb(maxlen)."""
    return check_rio(rp).readlineb(maxlen)


def rio_readnb(rp, n):
    """CSAPP rio_readnb: rp.readnb(n)."""
    return check_rio(rp).readnb(n)
