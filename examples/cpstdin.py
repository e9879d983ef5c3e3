"""Copy standard input to standard output (CSAPP ``cpstdin.c`` and ``cpfile.c``).

Run it:

    python examples/cpstdin.py < in > out               # one byte per read/write
    python examples/cpstdin.py --buffered < in > out    # a Rio buffer, line by line

The first form is the lecture's ``cpstdin.c``: one ``read`` and one ``write``
system call per byte. The second is ``cpfile.c``: ``rio_readinitb`` on
standard input, then ``rio_readlineb``/``rio_writen`` until EOF, so a system
call moves up to 8 KiB. Both copy any data byte for byte (NUL bytes and a
last line without a newline included). Time them on a large file to see what
a system call costs.
"""

from __future__ import annotations

import argparse
import os
import sys

import csapp

STDIN_FILENO = 0
STDOUT_FILENO = 1


def copy_bytewise(infd: int = STDIN_FILENO, outfd: int = STDOUT_FILENO) -> int:
    """``cpstdin.c``: ``while (Read(STDIN_FILENO, &c, 1) != 0) Write(STDOUT_FILENO, &c, 1);``

    Returns the number of bytes copied.
    """
    count = 0
    while True:
        c = os.read(infd, 1)  # read(2) of one byte; b"" is EOF (C: returns 0)
        if not c:
            return count
        os.write(outfd, c)  # write(2) of one byte: cannot be short
        count += 1


def copy_buffered(infd: int = STDIN_FILENO, outfd: int = STDOUT_FILENO) -> int:
    """``cpfile.c``: ``Rio_readinitb`` + ``Rio_readlineb`` + ``Rio_writen``.

    Returns the number of bytes copied.
    """
    count = 0
    rio = csapp.Rio(infd)  # rio_readinitb(&rio, STDIN_FILENO)
    while True:
        line = rio.readlineb(csapp.MAXLINE)  # n = rio_readlineb(&rio, buf, MAXLINE)
        if not line:  # 0 bytes: EOF
            return count
        count += csapp.rio_writen(outfd, line)  # rio_writen(STDOUT_FILENO, buf, n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Copy standard input to standard output.")
    parser.add_argument(
        "--buffered",
        action="store_true",
        help="copy through a Rio buffer (cpfile.c) instead of byte by byte",
    )
    args = parser.parse_args(argv)
    try:
        if args.buffered:
            copy_buffered()
        else:
            copy_bytewise()
    except BrokenPipeError:
        # The reader went away (``| head``). C would die of SIGPIPE; Python
        # ignores SIGPIPE, so the write raises instead: leave quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), STDOUT_FILENO)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
