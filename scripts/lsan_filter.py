"""Read AddressSanitizer / UBSan / LeakSanitizer report files; say what they hold.

Usage: python3 scripts/lsan_filter.py REPORT_DIR

* Any AddressSanitizer error (heap-buffer-overflow, use-after-free, ...) or
  UBSan "runtime error" is a failure.
* A leak report is a failure only when its allocation stack passes through
  our code (csapp._rio_c: the Cython module or csrc/). Leaks whose stacks
  never touch it are CPython's own (interpreter state it does not free at
  exit): counted and shown as noise, not failures.

* "Unable to get registers from thread N." is LeakSanitizer saying it could
  not take its measurement in full (a thread that exited or could not be
  stopped while it suspended the process, as happens on a loaded machine):
  that thread's stack is then counted as reachable, so a leak may go unseen.
  It is neither a finding nor a clean result: the run is inconclusive.

Exit status 0 when clean, 1 on a finding, 3 when the only trouble is an
inconclusive leak check (the caller retries the run). Prints a summary
either way.
"""

from __future__ import annotations

import os
import re
import sys
from typing import List, Tuple

OURS = re.compile(r"_rio_c|csrc/|/rio\.c|\brio\.c:|csapp_rio|csapp_(readn|writen)")
NO_REGISTERS = re.compile(r"^==\d+==Unable to get registers from thread \d+\.\s*$", re.M)
LEAK_HEAD = re.compile(r"^(Direct|Indirect) leak of (\d+) byte")


def leak_blocks(text: str) -> List[Tuple[str, int, str]]:
    """(kind, bytes, block text) for each leak record in a LeakSanitizer report."""
    blocks = []
    current: List[str] = []
    head = None
    for line in text.splitlines():
        match = LEAK_HEAD.match(line.strip())
        if match:
            if head:
                blocks.append((head[0], head[1], "\n".join(current)))
            head = (match.group(1), int(match.group(2)))
            current = [line]
        elif head is not None:
            if not line.strip() or line.startswith("SUMMARY"):
                blocks.append((head[0], head[1], "\n".join(current)))
                head = None
                current = []
            else:
                current.append(line)
    if head:
        blocks.append((head[0], head[1], "\n".join(current)))
    return blocks


def main(argv: List[str]) -> int:
    folder = argv[1]
    files = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    failures: List[str] = []
    noise_records = noise_bytes = 0
    inconclusive: List[str] = []
    for name in files:
        with open(os.path.join(folder, name), errors="replace") as f:
            text = f.read()
        text, unreadable_threads = NO_REGISTERS.subn("", text)
        if unreadable_threads:
            inconclusive.append(f"{name} ({unreadable_threads} thread(s))")
        if re.search(
            r"ERROR: AddressSanitizer|runtime error:|ERROR: UndefinedBehaviorSanitizer", text
        ):
            failures.append(f"--- {name}: sanitizer error\n{text[:20000]}")
            continue
        if "ERROR: LeakSanitizer" in text:
            for kind, size, block in leak_blocks(text):
                if OURS.search(block):
                    failures.append(f"--- {name}: {kind} leak of {size} bytes in our code\n{block}")
                else:
                    noise_records += 1
                    noise_bytes += size
            continue
        if text.strip():
            failures.append(f"--- {name}: unrecognised report\n{text[:5000]}")
    for failure in failures:
        print(failure)
    print(
        f"sanitizer reports: {len(files)} file(s); failures: {len(failures)}; "
        f"leaks outside csapp._rio_c (CPython, ignored): {noise_records} record(s), "
        f"{noise_bytes} bytes"
    )
    if inconclusive:
        print(
            "leak check INCONCLUSIVE: LeakSanitizer could not read the registers of "
            f"threads in {', '.join(inconclusive)}"
        )
    if failures:
        return 1
    return 3 if inconclusive else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
