"""The ``csapp`` command: echo servers and client, hostinfo, copy, demo, info.

Bad input (a port that is not a number, an unknown host, a port in use) is one
line on standard error and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import socket
import sys
from typing import Callable, List, NoReturn, Optional

from .. import __version__
from .._rio import EXTENSION_MISSING, IMPLEMENTATION, IMPLEMENTATIONS
from ..client import echo_client
from ..servers import SERVERS, ServerConfig, ServerControl, serve_asyncio
from ..sockets import local_address, open_clientfd, open_listenfd
from .copying import COPY_METHODS, copy_fd
from .demo import run_demo
from .hostinfo import hostinfo

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
STDIN_FILENO = 0
STDOUT_FILENO = 1


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on standard error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class _Version(argparse.Action):
    """``--version``: argparse's own would wrap the line at the terminal's width."""

    def __init__(self, option_strings: List[str], dest: str, help: Optional[str] = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> NoReturn:
        print(version_line(), flush=True)
        parser.exit(EXIT_OK)


def _fail(command: str, message: str) -> int:
    sys.stderr.write(f"csapp {command}: {message}\n")
    sys.stderr.flush()
    return EXIT_FAILURE


def _port(text: str) -> int:
    try:
        port = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, not {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, not {port}")
    return port


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}")
    return value


# ------------------------------------------------------------- commands


def _cmd_echoserver(args: argparse.Namespace) -> int:
    config = ServerConfig(
        verbose=args.verbose,
        idle_timeout=args.idle_timeout,
        max_clients=args.max_clients,
        threads=args.threads,
    )
    where = f"{args.host} port {args.port}" if args.host else f"port {args.port}"
    try:
        listenfd = open_listenfd(args.port, args.host)
    except socket.gaierror as exc:
        return _fail("echoserver", f"unknown host {args.host!r}: {exc.strerror}")
    except OSError as exc:
        return _fail("echoserver", f"cannot listen on {where}: {exc.strerror or exc}")
    # Signal handlers go in before the "listening on" line: from then on,
    # SIGINT/SIGTERM stop the server cleanly whenever they land.
    with ServerControl() as control:
        try:
            host, port = local_address(listenfd)
            print(f"listening on {host} port {port}", flush=True)
            if args.mode == "asyncio":
                serve_asyncio(listenfd, config=config, control=control, loop=args.loop)
            else:
                SERVERS[args.mode](listenfd, config=config, control=control)
        except OSError as exc:
            return _fail("echoserver", f"{exc.strerror or exc}")
        except RuntimeError as exc:  # --loop uvloop without uvloop
            return _fail("echoserver", str(exc))
    return EXIT_OK


def _cmd_echoclient(args: argparse.Namespace) -> int:
    try:
        clientfd = open_clientfd(args.host, args.port)
    except socket.gaierror as exc:
        return _fail("echoclient", f"unknown host {args.host!r}: {exc.strerror}")
    except OSError as exc:
        return _fail(
            "echoclient", f"cannot connect to {args.host} port {args.port}: {exc.strerror or exc}"
        )
    try:
        echo_client(clientfd, STDIN_FILENO, STDOUT_FILENO)
    except OSError as exc:
        return _fail(
            "echoclient", f"connection to {args.host} port {args.port} lost: {exc.strerror or exc}"
        )
    finally:
        os.close(clientfd)
    return EXIT_OK


def _cmd_hostinfo(args: argparse.Namespace) -> int:
    try:
        addresses = hostinfo(args.name)
    except socket.gaierror as exc:
        return _fail("hostinfo", f"{args.name}: {exc.strerror}")
    for address in addresses:
        print(address)
    return EXIT_OK


def _cmd_copy(args: argparse.Namespace) -> int:
    if args.sweep:
        return _copy_sweep(args)
    if args.plot:
        return _fail("copy", "--plot goes with --sweep")
    try:
        stats = copy_fd(STDIN_FILENO, STDOUT_FILENO, args.method)
    except BrokenPipeError:
        raise  # the reader of standard output left: main() exits quietly
    except OSError as exc:
        return _fail("copy", f"{exc.strerror or exc}")
    if args.stats:
        sys.stderr.write(stats.summary() + "\n")
    return EXIT_OK


def _copy_sweep(args: argparse.Namespace) -> int:
    from . import sweep

    try:
        with sweep.sweep_source(STDIN_FILENO, args.bytes) as path:
            nbytes = os.path.getsize(path)
            print(
                f"csapp copy --sweep: {nbytes:,} bytes from a file into a pipe, "
                f"implementation {IMPLEMENTATION}",
                flush=True,
            )
            print(sweep.HEADER, flush=True)
            rows = sweep.run_sweep(path, progress=lambda line: print(line, flush=True))
    except (OSError, RuntimeError) as exc:
        return _fail("copy", f"{getattr(exc, 'strerror', None) or exc}")
    if args.plot:
        title = (
            f"Copying {nbytes:,} bytes file → pipe (csapp, implementation "
            f"{IMPLEMENTATION}): a system call costs more than the byte it moves"
        )
        try:
            sweep.plot_sweep(rows, args.plot, title)
        except RuntimeError as exc:
            return _fail("copy", str(exc))
        print(f"saved {args.plot}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        return run_demo(sys.stdout)
    except BrokenPipeError:
        raise
    except OSError as exc:
        return _fail("demo", f"{exc.strerror or exc}")


def version_line() -> str:
    """``csapp --version``: the version, the implementation and, for the
    fallback, why the compiled extension is not in use."""
    why = f"; {EXTENSION_MISSING}" if EXTENSION_MISSING else ""
    return f"csapp {__version__} (implementation: {IMPLEMENTATION}{why})"


# What the fallback costs and how to leave it, for ``csapp info``.
FALLBACK_NOTE = "the pure-Python twin behaves the same, about 3x slower on the hot paths"
GET_THE_EXTENSION = (
    "for the compiled one, install a csapp wheel, or build with a C compiler and "
    "Python's headers (pip install -v shows the build's 'csapp:' lines)"
)


def _cmd_info(args: argparse.Namespace) -> int:
    """Which implementation, why (under the fallback), and where it all lives."""
    from ..aio import _buffer  # asyncio: imported here, never by ``import csapp.cli``

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    lines = [
        f"csapp {__version__}",
        f"implementation: {IMPLEMENTATION} (csapp.aio's buffer: {_buffer.IMPLEMENTATION})",
    ]
    if EXTENSION_MISSING:
        lines.append(f"why: {EXTENSION_MISSING}")
        if "c" in IMPLEMENTATIONS:
            lines.append(f"note: {FALLBACK_NOTE}; the compiled one is installed (unset the switch)")
        else:
            lines.append(f"note: {FALLBACK_NOTE}; {GET_THE_EXTENSION}")
    python = f"{platform.python_implementation()} {platform.python_version()}"
    lines.append(f"python: {python} ({sys.executable})")
    lines.append(f"package: {package}")
    print("\n".join(lines))
    return EXIT_OK


# ``csapp bench`` ran the benchmarks; they live in the source tree now
# (``bench/``), never in the wheel. The command stays to say where.
BENCH_MOVED = """\
csapp bench: the benchmarks are not part of the installed package; they live
in the csapp source tree (bench/). From a checkout of the csapp source, with
csapp installed (pip install '.[bench]'), run:
    {command}
    pytest bench --benchmark-only
"""


def _cmd_bench(args: argparse.Namespace) -> int:
    """Say where the benchmarks went, with the command this one would have been."""
    argv = ["python", "-m", "bench"]
    argv += ["--quick"] if args.quick else []
    for name in args.only or ():
        argv += ["--only", name]
    for option in ("rounds", "json", "plot"):
        value = getattr(args, option)
        argv += [f"--{option}", value] if value is not None else []
    sys.stderr.write(BENCH_MOVED.format(command=shlex.join(argv)))
    return EXIT_USAGE


# --------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The ``csapp`` argument parser with one subcommand per tool."""
    parser = _Parser(
        prog="csapp",
        description="CSAPP's robust I/O (RIO), sockets and echo servers, in Python.",
        epilog="Start with `csapp demo`. Each command has --help.",
    )
    parser.add_argument(
        "--version",
        action=_Version,
        help="print the version and the implementation in use (with why, for the "
        "pure-Python one), then exit",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    server = commands.add_parser(
        "echoserver",
        help="run an echo server",
        description="Echo every line a client sends back to it (CSAPP echoserver*). "
        "The first line on standard output is 'listening on ADDRESS port N'. "
        "SIGINT or SIGTERM stops it (exit status 0).",
    )
    server.add_argument("port", type=_port, metavar="PORT", help="TCP port; 0 picks a free one")
    server.add_argument(
        "--host",
        metavar="H",
        default=None,
        help="address to listen on (default: every IPv4 and IPv6 address)",
    )
    server.add_argument(
        "--mode",
        choices=list(SERVERS),
        default="iterative",
        help="concurrency model (default: iterative)",
    )
    server.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="asyncio mode: the event loop (default: asyncio; uvloop if installed)",
    )
    server.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="report connections and bytes received on standard error",
    )
    server.add_argument(
        "--idle-timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="close a client that sends nothing for this long",
    )
    server.add_argument(
        "--max-clients",
        type=_positive_int,
        metavar="N",
        help="serve at most N clients at once; others wait to be accepted",
    )
    server.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        default=8,
        help="prethreaded mode: size of the thread pool (default: 8)",
    )
    server.set_defaults(run=_cmd_echoserver)

    client = commands.add_parser(
        "echoclient",
        help="send standard input to an echo server",
        description="Send each line of standard input to the server and print its reply "
        "(CSAPP echoclient). Stops at end of input or when the server closes.",
    )
    client.add_argument("host", metavar="HOST")
    client.add_argument("port", type=_port, metavar="PORT")
    client.set_defaults(run=_cmd_echoclient)

    info = commands.add_parser(
        "hostinfo",
        help="list the addresses of a host name",
        description="Print every IPv4 and IPv6 address of NAME, one a line (CSAPP hostinfo).",
    )
    info.add_argument("name", metavar="NAME")
    info.set_defaults(run=_cmd_hostinfo)

    copy = commands.add_parser(
        "copy",
        help="copy standard input to standard output",
        description="Copy standard input to standard output: 'byte' makes one system call "
        "per byte, 'buffered' goes through a Rio, 'fast' uses sendfile/splice "
        "or a large buffer.",
    )
    copy.add_argument(
        "--method",
        choices=list(COPY_METHODS),
        default="buffered",
        help="how to copy (default: buffered)",
    )
    copy.add_argument(
        "--stats",
        action="store_true",
        help="print bytes, system calls, seconds and MB/s on standard error",
    )
    copy.add_argument(
        "--sweep",
        action="store_true",
        help="instead of copying, measure: the same data through a Rio of "
        "every buffer size from 1 byte to 1 MiB, then sendfile and "
        "splice; MB/s and system calls per size",
    )
    copy.add_argument(
        "--bytes",
        type=_positive_int,
        default=8 << 20,
        metavar="N",
        help="--sweep: how much random data when standard input is not a file (default: 8 MiB)",
    )
    copy.add_argument(
        "--plot",
        metavar="FILE.png",
        help="--sweep: draw both curves on log axes (needs matplotlib)",
    )
    copy.set_defaults(run=_cmd_copy)

    demo = commands.add_parser(
        "demo",
        help="a guided tour in a few seconds",
        description="Start an echo server, talk to it, and compare copy methods.",
    )
    demo.set_defaults(run=_cmd_demo)

    about = commands.add_parser(
        "info",
        help="which implementation is in use, and why",
        description="Print the csapp version, the implementation in use (c: the "
        "compiled extension; python: the pure-Python twin) and, for the twin, why "
        "the compiled extension is not in use; the Python version and where csapp "
        "is installed.",
    )
    about.set_defaults(run=_cmd_info)

    bench = commands.add_parser(
        "bench",
        help="where the benchmarks are (the source tree: python -m bench)",
        description="The benchmarks are not installed: from a checkout of the csapp "
        "source, run `python -m bench [--quick] [--only WORKLOAD] [--json FILE] "
        "[--plot FILE.png] [--rounds N]` or `pytest bench --benchmark-only`. "
        "This command only says so, and exits with status 2.",
    )
    # The old options, accepted and passed on in the message (never checked
    # here), so an old script gets the message rather than a usage error.
    bench.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    for option in ("--json", "--plot", "--rounds"):
        bench.add_argument(option, help=argparse.SUPPRESS)
    bench.add_argument("--only", action="append", help=argparse.SUPPRESS)
    bench.set_defaults(run=_cmd_bench)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``csapp`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Standard output went away (``| head``): not worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, STDOUT_FILENO)
        os.close(devnull)
        return EXIT_FAILURE
