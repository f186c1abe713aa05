"""The node: a Python process that other nodes can reach (Elixir's ``Node``).

``Node.start`` makes this process a node: it listens on a port, registers its name
with the host's port mapper and starts the distribution runtime (``_dist.Dist``);
the other functions of this module are Elixir's ``Node.*``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable

from . import _global, _names
from . import _transport as wire
from ._console import console
from ._dist import CONNECT_TIMEOUT, Dist
from ._errors import BadRpc, PydistError
from ._process import Pid, _table, spawn

__all__ = ["Node"]

HEARTBEAT = 5.0                # seconds of silence before a node counts as down


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {value!r}") from None


def _cookie(cookie: str | bytes | None) -> bytes:
    """``cookie=``, else ``PYDIST_COOKIE``, else ``~/.erlang.cookie``: Erlang's own file,
    so that iex and pydist share it (made once, 0600, if missing)."""
    if cookie is None:
        cookie = os.environ.get("PYDIST_COOKIE") or None
    if cookie is None:
        path = Path(os.environ.get("HOME", str(Path.home()))) / ".erlang.cookie"
        if not path.exists():
            _make_cookie_file(path)
        cookie = _read_cookie_file(path)
    if isinstance(cookie, str):
        cookie = cookie.encode()
    if not isinstance(cookie, bytes) or not cookie:
        raise TypeError(f"the cookie must be a non-empty string, not {cookie!r}")
    return cookie


def _make_cookie_file(path: Path) -> None:
    """Write a new random cookie where no one can see it half-written: into a private
    file of our own, then linked to its name (atomic: if another node starting at the
    same moment linked its own first, both use that one)."""
    mine = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(mine, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(20))
        try:
            os.link(mine, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(mine)


def _read_cookie_file(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & 0o077:
        raise PydistError(f"the cookie file {path} can be read by other users (mode "
                          f"{mode & 0o777:o}), so they could join your nodes; Erlang refuses "
                          f"such a file too. Run: chmod 600 {path}")
    text = path.read_text().strip()
    if not text:
        raise PydistError(f"the cookie file {path} is empty: delete it (a new one is made) "
                          f"or write a cookie into it")
    return text


def _after_fork_in_child() -> None:
    """A forked child is not the node: one OS process, one node, as in Erlang."""
    dist = _table.dist
    if dist is not None:
        dist.forget_in_child()
        _table.set_dist(None)
        console.forward = None
        console.settle = console.settle_local


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ---------------------------------------------------------------- Node.*

def _dist(what: str) -> Dist:
    return _table.dist_required(what)


def _node_arg(node, what: str) -> str:
    if not isinstance(node, str):
        raise TypeError(f"{what} takes a node name like 'b@{_names.short_host()}', not {node!r}")
    if "@" not in node:
        raise ValueError(f"{what}({node!r}): a node name has the form name@host, "
                         f"e.g. '{node}@{_names.short_host()}'")
    return _names.parse(node).full


class Node:
    """Elixir's ``Node`` module: start this process as a node, reach the others."""

    @staticmethod
    def start(name: str, cookie: str | None = None, *, heartbeat: float | None = None,
              long: bool | None = None, tls: str | None = None) -> str:
        """Make this Python process a node; returns its full name.

        Elixir: ``iex --sname gus`` (``Node.start("gus")``) or ``iex --name
        gus@127.0.0.1`` (``Node.start("gus@127.0.0.1")``). ``heartbeat`` is how many
        seconds of silence make a connected node count as down (default 5 s, or
        ``PYDIST_HEARTBEAT``). ``tls`` is a folder made by ``python -m pydist tls``
        (or ``PYDIST_TLS``): every connection is then encrypted (Erlang:
        ``-proto_dist inet_tls``).

            >>> Node.start("gus")
            'gus@vm'

        Starting the node this process already is returns its name again, so a
        notebook can be run from the top as often as you like.
        """
        node = _names.parse(name, long=long)
        if _table.dist is not None:
            if _table.dist.name == node.full:        # a notebook run again from the top
                return node.full
            raise PydistError(f"this process is already the node {_table.dist.name}; "
                              f"Node.stop() first to start it under another name (in a "
                              f"notebook: Kernel → Restart clears everything)")
        beat = _env_float("PYDIST_HEARTBEAT", HEARTBEAT) if heartbeat is None else heartbeat
        if not isinstance(beat, (int, float)) or beat <= 0:
            raise ValueError(f"heartbeat is a number of seconds > 0, not {beat!r}")
        tls = tls or os.environ.get("PYDIST_TLS") or None
        dist = Dist(node, _cookie(cookie), float(beat), tls)
        dist.start()
        console.install()
        console.settle = dist.settle
        _table.set_dist(dist)
        return dist.name

    @staticmethod
    def stop() -> bool:
        """Stop being a node: close every connection, free the name and the port."""
        dist = _table.dist
        if dist is None:
            return False
        try:
            dist.stop()
        finally:
            _table.set_dist(None)
            console.forward = None
            console.settle = console.settle_local
        return True

    @staticmethod
    def self() -> str:
        """Elixir: ``Node.self()``. ``"gus@vm"``, or ``"nonode@nohost"`` if not a node."""
        return _table.name

    @staticmethod
    def alive() -> bool:
        """Elixir: ``Node.alive?()``. Whether this process is a node."""
        return _table.dist is not None

    @staticmethod
    def get_cookie() -> str:
        """Elixir: ``Node.get_cookie()``."""
        return _dist("Node.get_cookie").cookie.decode(errors="replace")

    @staticmethod
    def list() -> list[str]:
        """Elixir: ``Node.list()``. The connected nodes, this one excluded."""
        dist = _table.dist
        return [] if dist is None else list(dist.peers)

    @staticmethod
    def ping(node: str) -> str:
        """Elixir: ``Node.ping(:"b@vm")``. ``"pong"`` if it answers (and now we are
        connected), ``"pang"`` if not. Never hangs: a missing node is a prompt pang."""
        node = _node_arg(node, "Node.ping")
        dist = _table.dist
        if dist is None:
            return "pang"
        if node == dist.name:
            return "pong"
        if node not in dist.peers:
            return "pong" if dist.connect(node) is not None else "pang"
        try:
            return dist.request(node, wire.PING, timeout=CONNECT_TIMEOUT)
        except BadRpc:
            return "pang"

    @staticmethod
    def connect(node: str) -> bool:
        """Elixir: ``Node.connect(:"b@vm")``. ``True`` once connected (to ``node`` and,
        soon after, to every node it knows: the mesh), ``False`` if it cannot be reached."""
        node = _node_arg(node, "Node.connect")
        dist = _dist("Node.connect")
        return node == dist.name or dist.connect(node) is not None

    @staticmethod
    def disconnect(node: str) -> bool:
        """Elixir: ``Node.disconnect(:"b@vm")``. Drops the connection."""
        node = _node_arg(node, "Node.disconnect")
        dist = _dist("Node.disconnect")
        peer = dist.peers.get(node)
        if peer is None:
            return False
        peer.channel.flush()                 # what we sent it before still goes
        peer.channel.shutdown()
        _global.disconnecting(dist, node)    # at once, as Erlang's nodedown: not the reader's
        with _table.dist.changed:
            _table.dist.changed.wait_for(lambda: peer.lost, timeout=1.0)
        return True

    @staticmethod
    def monitor(node: str, flag: bool = True) -> bool:
        """Elixir: ``Node.monitor(:"b@vm", true)``. The caller later gets
        ``("nodedown", node)`` once, when the connection to ``node`` is lost."""
        node = _node_arg(node, "Node.monitor")
        dist = _dist("Node.monitor")
        me = _table.current().pid
        if not flag:
            with dist.lock:
                watchers = dist.node_monitors.get(node, [])
                if me in watchers:
                    watchers.remove(me)
            return True
        if dist.connect(node) is not None:
            with dist.lock:                  # the same lock guards losing a connection
                if node in dist.peers:
                    dist.node_monitors.setdefault(node, []).append(me)
                    return True
        _table.current().deliver(("nodedown", node))     # down already, as in Erlang
        return True

    @staticmethod
    def spawn(node: str, fun: Callable, *args) -> Pid:
        """Elixir: ``Node.spawn(node, fn -> ... end)``. Starts ``fun(*args)`` as a
        process on ``node`` and returns its pid. ``fun`` may be defined in a notebook:
        it travels by value. What it prints appears here, as in Erlang."""
        node = _node_arg(node, "Node.spawn")
        if not callable(fun):
            raise TypeError(f"Node.spawn takes a node, a function and its arguments; "
                            f"{fun!r} is not callable")
        dist = _dist("Node.spawn")
        if node == dist.name:
            return spawn(fun, *args)
        payload = wire.encode((fun, args))
        return dist.request(node, wire.SPAWN, payload, timeout=CONNECT_TIMEOUT * 2)
