"""Reproducer: the two Rio twins parted after a large read that raised (fixed).

Found by fuzz/atheris_rio.py (input: atheris-grown-refill, with
CSAPP_FUZZ_STRICT=1). A read that needs more than bufsize bytes grows the
compiled twin's buffer (csapp_rio_reserve) before its read(2); when that
read raises (EAGAIN here; a signal handler can do the same), nothing is
consumed, so nothing shrinks the buffer back. The next refill then asks
for bufsize bytes (csapp_rio_fill's want, capped only by the grown free
space) instead of bufsize - pending (docs/CONTRACT.md, rule 1), which the
pure-Python twin asks for. Results, `buffered` and the read(2) sizes differ.

Fixed in csapp_rio_reserve, which now gives such a buffer back first; the
test suite holds it (test_refill_after_a_large_read_failed_asks_bufsize_minus_pending).

Run: python fuzz/crashes/twin_refill.py   (exit status 1 if the twins differ)
"""

import os
import sys

from csapp import _rio_c, _rio_py


def run(mod):
    r, w = os.pipe()
    os.set_blocking(r, False)
    rp = mod.Rio(r, 16)
    try:
        rp.read(100)  # more than bufsize, nothing sent yet: BlockingIOError
    except BlockingIOError:
        pass
    os.write(w, b"{")
    try:
        rp.readlineb()  # takes the one byte, then would block: 1 pending
    except BlockingIOError:
        pass
    os.write(w, b"\n" + b"x" * 46)
    os.close(w)
    line = rp.readlineb()  # the refill: c asks 16, py 15 (bufsize - pending)
    result = (line, rp.buffered)
    os.close(r)
    return result


c, py = run(_rio_c), run(_rio_py)
print("c: ", c)
print("py:", py)
sys.exit(0 if c == py else 1)
