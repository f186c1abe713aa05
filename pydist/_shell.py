"""The interactive prompt: ``python -m pydist --sname gus`` is ``iex --sname gus``."""

from __future__ import annotations

import code
import sys

import pydist

from ._node import Node


def run(name: str, *, long: bool, cookie: str | None, tls: str | None = None) -> int:
    full = Node.start(name, cookie, long=long, tls=tls)
    namespace = {n: getattr(pydist, n) for n in pydist.__all__}
    namespace["__name__"] = "__main__"
    sys.ps1, sys.ps2 = f"pydist({full})> ", "... "
    if sys.stdin.isatty():
        try:
            import readline  # noqa: F401  (history and line editing)
        except ImportError:
            pass
    banner = (f"pydist shell on node {full}: Node, Process, rpc, peer, spawn, send, "
              f"receive, flush, self and pid_to_list are imported. Ctrl-D quits.")
    print(banner, flush=True)                     # on stdout, like iex's
    try:
        code.InteractiveConsole(namespace).interact(banner="", exitmsg="")
    finally:
        Node.stop()
    return 0
