"""The ``wtlab`` command: ``serve``, ``relay``, ``sweep``, ``demo``, ``trace``, ``linktrace``.

Each subcommand lives with the package it belongs to; this module only
dispatches, so ``wtlab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from wtlab.errors import WtlabError

# subcommand -> (module, function taking the argv tail, one-line help)
COMMANDS = {
    "serve": ("wtlab.transport.server", "cli_main",
              "run the WebTransport server (echo, sink, source; its limits: wtlab serve --help)"),
    "relay": ("wtlab.net.relay", "cli_main", "UDP impairment relay on loopback (rate, delay, loss, trace)"),
    "sweep": ("wtlab.lab.sweep", "cli_main", "run a parameter grid into a dataset"),
    "demo": ("wtlab.lab.demo", "cli_main", "the embedded demo: local server, emulated path, comparison"),
    "trace": ("wtlab.trace.cli", "cli_main", "convert and summarise trace files (qlog, Parquet, CSV)"),
    "linktrace": ("wtlab.net.cellular", "cli_main",
                  "write a generated Mahimahi link trace (poisson, markov, cellular)"),
}


def version_line() -> str:
    """``wtlab 0.1.0 (aioquic 1.7.2, Python 3.11.7)``: what ``wtlab --version`` prints."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from wtlab import __version__

    try:
        aioquic = version("aioquic")
    except PackageNotFoundError:  # pragma: no cover - aioquic is a dependency
        aioquic = "missing"
    return f"wtlab {__version__} (aioquic {aioquic}, Python {platform.python_version()})"


def main(argv: list[str] | None = None) -> int:
    """Run the ``wtlab`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status
    (2 and a message on stderr for a :class:`~wtlab.errors.WtlabError`).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="wtlab", description="Study, teach and compare "
                                     "congestion control over QUIC and WebTransport.")
    parser.add_argument("command", choices=sorted(COMMANDS), help="; ".join(
        f"{k}: {v[2]}" for k, v in sorted(COMMANDS.items())))
    parser.add_argument("--version", action="store_true", help="print the versions and exit")
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    if argv[0] in ("--version", "-V"):
        print(version_line())
        return 0
    ns, rest = parser.parse_known_args(argv[:1])
    module, func, _ = COMMANDS[ns.command]
    try:
        return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)
    except WtlabError as exc:
        print(f"wtlab {ns.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
