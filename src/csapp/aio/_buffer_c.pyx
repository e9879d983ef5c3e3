# cython: language_level=3, embedsignature=True, embedsignature.format=python, binding=False, boundscheck=False, wraparound=False
"""The receive buffer of ``csapp.aio``, compiled: the twin of ``csapp.aio._buffer_py``.

The bytes that arrived and were not read yet are ``data[start:end]``; the event
loop's ``recv_into`` writes straight into ``data[end:]`` (``get_buffer``, then
``buffer_updated``), lines are found by the C core's ``csapp_find`` (memchr or
memmem) and echo's cut by ``csapp_echo_cut``. The storage is a ``bytearray``
whose address is read afresh under the GIL at every use, and which is replaced,
never resized, so no call sequence can leave a dangling pointer: a view handed
out keeps the old storage alive.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.string cimport memcmp, memcpy, memmove

from rio cimport csapp_echo_cut, csapp_find

from csapp import _shared
from csapp._shared import MSG_MAXLEN, MSG_NBYTES

__all__ = ["StreamBuffer"]

cdef Py_ssize_t FIRST_FREE = _shared.AIO_FIRST_FREE
cdef Py_ssize_t MAX_FREE = _shared.AIO_MAX_FREE
cdef Py_ssize_t MAX_ROOM = _shared.MAX_CHUNK

# The storage of a buffer that never received, or gave back what a burst made
# it grow to: never written, never resized, so all buffers can share it (and
# the one view of it).
cdef bytearray EMPTY = bytearray()
cdef object EMPTY_VIEW = memoryview(EMPTY)


cdef class StreamBuffer:
    """What ``csapp.aio.StreamReader`` buffers (CSAPP's ``rio_t`` for asyncio)."""

    cdef bytearray _data
    cdef object _view
    cdef Py_ssize_t _start
    cdef Py_ssize_t _end
    cdef Py_ssize_t _room  # the free space the next get_buffer() offers

    def __cinit__(self):
        self._data = EMPTY
        self._view = EMPTY_VIEW
        self._start = 0
        self._end = 0
        self._room = FIRST_FREE

    def __len__(self):
        return self._end - self._start

    def __repr__(self):
        return f"<{type(self).__module__}.{type(self).__qualname__} buffered={len(self)}>"

    def __reduce__(self):
        raise TypeError(_shared.msg_no_pickle(self))

    def capacity(self):
        """Bytes of storage held (buffered and free)."""
        return len(self._data)

    # -- filling

    cdef int _reserve(self, Py_ssize_t room) except -1:
        cdef Py_ssize_t cap = len(self._data)
        cdef Py_ssize_t count
        cdef bytearray data
        cdef char *base
        if self._start == self._end:
            self._start = self._end = 0
        if cap - self._end >= room:
            return 0
        count = self._end - self._start
        if self._start and cap - count >= room:
            base = PyByteArray_AS_STRING(self._data)
            memmove(base, base + self._start, <size_t>count)
        else:
            # Not zero-filled: the kernel writes the free space before it is read.
            data = PyByteArray_FromStringAndSize(NULL, max(2 * cap, count + room))
            if count:
                memcpy(PyByteArray_AS_STRING(data),
                       PyByteArray_AS_STRING(self._data) + self._start, <size_t>count)
            if self._view is not EMPTY_VIEW:
                self._view.release()
            self._data = data
            self._view = memoryview(data)
        self._start = 0
        self._end = count
        return 0

    def get_buffer(self, Py_ssize_t sizehint=-1):
        """The free space to receive into: 4 KiB at first, doubling up to 64 KiB as
        receives fill it; a ``sizehint`` above 64 KiB is honoured up to 16 MiB."""
        cdef Py_ssize_t room = self._room
        if sizehint > MAX_FREE:
            room = sizehint if sizehint < MAX_ROOM else MAX_ROOM
        self._reserve(room)
        return self._view[self._end:]

    cdef inline int _received(self, Py_ssize_t nbytes) except -1:
        cdef Py_ssize_t free = len(self._data) - self._end
        if nbytes < 0 or nbytes > free:
            raise ValueError(MSG_NBYTES)
        if nbytes == free and self._room < MAX_FREE:
            self._room *= 2  # the kernel had more: offer more next time
        self._end += nbytes
        return 0

    def buffer_updated(self, Py_ssize_t nbytes):
        """``nbytes`` were written at the start of the free space."""
        self._received(nbytes)

    def extend(self, data):
        """Append ``data`` (``StreamReader.feed_data``)."""
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self._reserve(view.len)
            memcpy(PyByteArray_AS_STRING(self._data) + self._end, view.buf, <size_t>view.len)
            self._end += view.len
        finally:
            PyBuffer_Release(&view)

    # -- searching

    cdef Py_ssize_t _find(self, object sep, Py_ssize_t offset) except -2:
        cdef Py_buffer view
        cdef Py_ssize_t at
        if offset < 0:
            offset = 0
        if offset >= self._end - self._start:
            # still check the type of sep, as bytearray.find does
            PyObject_GetBuffer(sep, &view, PyBUF_SIMPLE)
            PyBuffer_Release(&view)
            return -1
        PyObject_GetBuffer(sep, &view, PyBUF_SIMPLE)
        try:
            at = csapp_find(PyByteArray_AS_STRING(self._data) + self._start + offset,
                            <size_t>(self._end - self._start - offset),
                            view.buf, <size_t>view.len)
        finally:
            PyBuffer_Release(&view)
        return at + offset if at >= 0 else -1

    def find(self, sep, Py_ssize_t offset=0):
        """Where ``sep`` first occurs at or after ``offset``, counted from the first byte; -1."""
        return self._find(sep, offset)

    def startswith(self, sep, Py_ssize_t offset=0):
        """Does ``sep`` occur exactly at ``offset``?"""
        cdef Py_buffer view
        cdef bint found
        if offset < 0:
            offset = 0
        PyObject_GetBuffer(sep, &view, PyBUF_SIMPLE)
        try:
            found = (self._end - self._start - offset >= view.len and
                     memcmp(PyByteArray_AS_STRING(self._data) + self._start + offset,
                            view.buf, <size_t>view.len) == 0)
        finally:
            PyBuffer_Release(&view)
        return found

    def find_any(self, tuple seps, Py_ssize_t offset=0):
        """The match of ``seps`` that ends first at or after ``offset``: (start, end), or (-1, -1)."""
        cdef Py_ssize_t best_start = -1, best_end = -1, at, stop
        for sep in seps:
            at = self._find(sep, offset)
            if at >= 0:
                stop = at + len(sep)
                if best_end < 0 or stop < best_end:
                    best_start, best_end = at, stop
        return best_start, best_end

    # -- taking

    cdef bytes _take(self, Py_ssize_t n):
        cdef Py_ssize_t start = self._start
        if n > self._end - start:
            n = self._end - start
        if n < 0:
            n = 0
        out = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(self._data) + start, n)
        self._start = start + n
        if self._start == self._end:
            self._drained()
        return out

    cdef void _drained(self):
        """Nothing is buffered: storage that grew past 64 KiB goes back (a view handed
        out keeps it alive); up to 64 KiB stays for the next receive."""
        self._start = self._end = 0
        if len(self._data) > MAX_FREE:  # it grew for a burst: do not keep that
            self._data = EMPTY
            self._view = EMPTY_VIEW

    def take(self, Py_ssize_t n):
        """Remove and return the first ``min(n, len(self))`` bytes."""
        return self._take(n)

    def discard(self, Py_ssize_t n):
        """Drop the first ``min(n, len(self))`` bytes."""
        if n > self._end - self._start:
            n = self._end - self._start
        if n > 0:
            self._start += n
        if self._start == self._end:
            self._drained()

    def clear(self):
        """Drop everything buffered."""
        self._drained()

    def take_line(self, Py_ssize_t limit):
        """The next line through ``\\n`` if it is buffered and its ``\\n`` is at most
        ``limit`` bytes in (``StreamReader.readline``'s fast path); else None."""
        cdef Py_ssize_t at = csapp_find(PyByteArray_AS_STRING(self._data) + self._start,
                                        <size_t>(self._end - self._start), b"\n", 1)
        if at < 0 or at > limit:
            return None
        return self._take(at + 1)

    def take_lineb(self, Py_ssize_t maxlen, bint at_eof):
        """CSAPP ``rio_readlineb``'s piece: through ``\\n`` within ``maxlen - 1`` bytes,
        else ``maxlen - 1`` bytes, else (at EOF) the rest; None when more must arrive."""
        cdef Py_ssize_t span = maxlen - 1
        cdef Py_ssize_t avail = self._end - self._start
        cdef Py_ssize_t at
        if maxlen < 2:
            raise ValueError(MSG_MAXLEN)
        at = csapp_find(PyByteArray_AS_STRING(self._data) + self._start,
                                        <size_t>(avail if avail < span else span), b"\n", 1)
        if at >= 0:
            return self._take(at + 1)
        if avail >= span or at_eof:
            return self._take(span)
        return None

    def take_echo(self, bint at_eof, Py_ssize_t limit):
        """What an echo server sends back now (``csapp._shared.echo_cut``), removed."""
        cdef size_t cut = csapp_echo_cut(PyByteArray_AS_STRING(self._data) + self._start,
                                         <size_t>(self._end - self._start), at_eof,
                                         <size_t>(limit if limit > 0 else 0))
        return self._take(<Py_ssize_t>cut)

    def echo_received(self, Py_ssize_t nbytes, write, Py_ssize_t limit):
        """``buffer_updated(nbytes)``, then ``write`` what echo sends back now; its length."""
        cdef size_t cut
        self._received(nbytes)
        cut = csapp_echo_cut(PyByteArray_AS_STRING(self._data) + self._start,
                             <size_t>(self._end - self._start), 0,
                             <size_t>(limit if limit > 0 else 0))
        if cut == 0:
            return 0
        write(self._take(<Py_ssize_t>cut))
        return cut
