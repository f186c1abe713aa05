"""Requests between pydist nodes: a call that waits for its REPLY, and settle.

Elixir's twin is the request/reply half of ``erpc``: the caller sends a request
carrying a reference and its own pid, and waits for the answer with that reference,
up to its timeout; a reply that comes after the caller gave up is dropped. Here the
reference and the caller travel as plain numbers, and the answer lands in the
calling process's ``replies`` (not its mailbox, so a ``receive`` never sees it).

``settle`` is pydist's own: at the end of a notebook cell, the nodes the cell talked
to are asked to answer once their processes are quiet, so what they print lands in
that cell (see ``_console``).
"""

from __future__ import annotations

import time

from . import _transport as wire
from ._console import console
from ._errors import BadRpc
from ._process import shielded
from ._proctable import _exited, _table

__all__ = ["Requesting", "SETTLE_LIMIT"]

SETTLE_LIMIT = 1.0             # seconds a notebook cell waits, at most, for other nodes


class Requesting:
    """The requests half of ``_dist.Dist``: needs its ``peers``, ``pending``,
    ``touched``, ``children`` and ``connect``."""

    def request(self, node: str, op: int, *rest, timeout: float | None) -> object:
        """Send ``(op, ref, caller, *rest)`` to ``node`` and wait for its REPLY; raise
        BadRpc on failure. The reference and the caller travel as plain numbers."""
        proc = getattr(_table.local, "proc", None) or _table.current()
        ref = next(_table.refs)
        item = (op, ref, proc.pid.num, *rest)
        if node not in self.peers:            # a TypeError before any connecting
            wire.encode_parts(item)
        peer = self.peers.get(node) or self.connect(node)
        if peer is None:
            raise BadRpc("nodedown", node, f"cannot reach {node}: is it running? "
                         f"`python -m pydist names` lists the nodes on this host")
        data = peer.encode(item)
        # No lock: _lost marks the peer lost before it collects the calls waiting on it,
        # so a call it misses sees `peer.lost` below.
        self.pending[ref] = (proc, node)
        self.touched.add(node)
        console.dirty = True
        try:
            with shielded():
                peer.channel.send(data)
            if peer.lost:
                raise BadRpc("nodedown", node, f"the connection to {node} was lost")
            ok, value = _wait_reply(proc, ref, timeout, node)
        finally:
            self.pending.pop(ref, None)
            proc.replies.pop(ref, None)
        if not ok:
            raise value
        return value

    def reply(self, ref: int, ok: bool, value) -> None:
        entry = self.pending.get(ref)
        if entry is None:
            return                                    # too late: the caller gave up
        proc = entry[0]
        proc.replies[ref] = (ok, value)
        proc.signal()

    def settle(self, limit: float = SETTLE_LIMIT) -> None:
        """Let the processes here, on the nodes this cell talked to and on the peers
        it started finish what they do, so their output lands in this cell: run at
        the end of a notebook cell. Waits ``limit`` seconds at most, whatever those
        nodes are doing (a busy process there is simply not waited for)."""
        deadline = time.monotonic() + limit
        nodes = self.touched | {child.node for child in self.children}
        self.touched = set()
        _table.quiet(limit / 2)
        for _ in range(2):                # twice: what b did may have made c print
            self._sync(nodes & set(self.peers), deadline)
            _table.quiet(max(0.0, min(0.1, deadline - time.monotonic())))

    def _sync(self, nodes: set[str], deadline: float) -> None:
        """SYNC every node in ``nodes`` at once; wait for their answers until ``deadline``.
        Each answers once its processes are quiet; what they printed comes first."""
        proc = getattr(_table.local, "proc", None) or _table.current()
        refs = []
        for node in nodes:
            peer = self.peers.get(node)
            left = deadline - time.monotonic()
            if peer is None or peer.beam is not None or left <= 0:
                continue
            ref = next(_table.refs)
            self.pending[ref] = (proc, node)
            refs.append(ref)
            peer.channel.send(wire.encode_parts((wire.SYNC, ref, proc.pid.num, left)))
        try:
            while any(ref not in proc.replies for ref in refs):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                if proc is _table.main_proc and console.pending:
                    console.drain()
                proc.sleep(left)
        finally:
            for ref in refs:
                self.pending.pop(ref, None)
                proc.replies.pop(ref, None)


def _wait_reply(proc, ref: int, timeout: float | None, node: str) -> tuple:
    replies, deadline = proc.replies, None
    while True:
        if proc.exit_reason is not None:      # killed while it waited
            _exited(proc)
        if proc is _table.main_proc and console.pending:
            console.drain()                 # the call's output first, then its result
        answer = replies.pop(ref, None)
        if answer is not None:
            return answer
        if timeout is None:
            remaining = -1
        else:
            if deadline is None:
                deadline = time.monotonic() + timeout
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False, BadRpc("timeout", node, f"no answer from {node} "
                                     f"within {timeout} s")
        proc.sleep(remaining)
