"""Read ThreadSanitizer report files (TSAN_OPTIONS=log_path=...); say what they hold.

Usage: python3 scripts/tsan_filter.py REPORT_DIR

TSan writes one file per process (log_path=DIR/tsan gives DIR/tsan.PID), each
report between lines of '=' signs. The interpreter is not instrumented, so a
report can only come from our instrumented modules or from libc functions TSan
intercepts (memcpy, read, pthread_*...), whoever called them.

* A report is ours, and a failure, when any of its stacks (either access, the
  location's allocation, a mutex's creation) passes through csapp's compiled
  code: the Cython modules _rio_c / aio/_buffer_c or the C core csrc/rio.c. A race
  between our code and the interpreter counts as ours: our code is one side.
* A report whose stacks never touch that code is the interpreter's (or libc's)
  own: counted and shown as noise, not a failure.
* A report with a stack TSan could not restore ("failed to restore the stack")
  and no frame of ours cannot be attributed: the missing stack may be ours, so
  it is a failure too (a larger TSAN_OPTIONS history_size makes them rarer).
* Anything else in a report file (a fatal TSan error, a CHECK failure) is a
  failure: the run cannot be trusted.

Exit status 0 when clean, 1 otherwise. Prints a summary either way.
"""

from __future__ import annotations

import collections
import os
import re
import sys
from typing import Counter, Dict, List, Tuple

OURS = re.compile(r"_rio_c|_buffer_c|csrc/|\brio\.c\b|\bcsapp_[a-z_]+\b")
DELIM = re.compile(r"^=+$")
HEAD = re.compile(r"^WARNING: ThreadSanitizer: (.+?)(?: \(pid=\d+\))?$")
UNRESTORED = "failed to restore the stack"
# The line TSan prints at exit after reporting; carries no information of its own.
TRAILER = re.compile(r"^ThreadSanitizer: reported \d+ warnings?$")
# With print_suppressions=1, at exit: a header, then "COUNT TYPE:PATTERN" lines.
MATCHED = re.compile(r"^ThreadSanitizer: Matched \d+ suppressions? \(pid=\d+\):$")
MATCHED_LINE = re.compile(r"^(\d+) (\w+:.*)$")


def split_reports(text: str) -> Tuple[List[str], List[str], Counter[str]]:
    """(reports, stray lines, suppressed): each report is the text between two
    '=' lines; suppressed counts the reports each suppression hid."""
    reports: List[str] = []
    stray: List[str] = []
    suppressed: Counter[str] = collections.Counter()
    current: List[str] = []
    inside = False
    in_matched = False
    for line in text.splitlines():
        if not inside and MATCHED.match(line.strip()):
            in_matched = True
            continue
        if in_matched:
            match = MATCHED_LINE.match(line.strip())
            if match:
                suppressed[match.group(2)] += int(match.group(1))
                continue
            in_matched = False
        if DELIM.match(line.strip()):
            if inside and current:
                reports.append("\n".join(current))
            current = []
            inside = not inside
            continue
        if inside:
            current.append(line)
        elif line.strip() and not TRAILER.match(line.strip()):
            stray.append(line)
    if inside and current:  # the process died mid-report (e.g. SIGKILL)
        reports.append("\n".join(current))
    return reports, stray, suppressed


def kind_of(report: str) -> str:
    for line in report.splitlines():
        match = HEAD.match(line.strip())
        if match:
            return match.group(1)
    return "unknown report"


def summary_of(report: str) -> str:
    for line in report.splitlines():
        if line.startswith("SUMMARY: ThreadSanitizer:"):
            return line[len("SUMMARY: ThreadSanitizer: ") :]
    return kind_of(report)


def main(argv: List[str]) -> int:
    folder = argv[1]
    files = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    failures: List[str] = []
    noise: Counter[str] = collections.Counter()
    first_noise: Dict[str, str] = {}
    suppressed: Counter[str] = collections.Counter()
    ours = 0
    for name in files:
        with open(os.path.join(folder, name), errors="replace") as f:
            text = f.read()
        reports, stray, hidden = split_reports(text)
        suppressed.update(hidden)
        for report in reports:
            if OURS.search(report):
                ours += 1
                failures.append(f"--- {name}: {kind_of(report)} in csapp's code\n{report}")
            elif UNRESTORED in report:
                failures.append(
                    f"--- {name}: {kind_of(report)} with a stack TSan could "
                    f"not restore (may be ours)\n{report}"
                )
            else:
                key = summary_of(report)
                noise[key] += 1
                first_noise.setdefault(key, f"{name}\n{report}")
        # exitcode=0 also makes a process that TSan saw crash exit with 0: its
        # "ERROR: ThreadSanitizer: SEGV ..." here is the only trace of it.
        fatal = [line for line in stray if "ERROR: ThreadSanitizer" in line]
        if fatal:
            failures.append(
                f"--- {name}: fatal ThreadSanitizer error (a crash?)\n" + "\n".join(stray[:200])
            )
        elif stray:
            failures.append(f"--- {name}: unrecognised output\n" + "\n".join(stray[:200]))
    for failure in failures:
        print(failure)
    if noise:
        print("noise (no frame of csapp's code; the interpreter's or libc's own):")
        for key, count in noise.most_common():
            print(f"  {count:5d} x {key}")
        if os.environ.get("TSAN_FILTER_VERBOSE") == "1":
            for key, text in first_noise.items():
                print(f"--- first report of: {key}\n{text}")
    if suppressed:
        print("suppressed by scripts/tsan.supp (processes that exited normally):")
        for key, count in suppressed.most_common():
            print(f"  {count:5d} x {key}")
    print(
        f"tsan reports: {len(files)} file(s); in csapp's code: {ours}; "
        f"failures: {len(failures)}; noise outside csapp's code (ignored): "
        f"{sum(noise.values())}; suppressed: {sum(suppressed.values())}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
