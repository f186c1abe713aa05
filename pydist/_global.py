"""Global names: one name table for the whole cluster, BEAM nodes included.

Elixir's twin is ``:global`` (kernel's ``global.erl``)::

    :global.register_name(:svc, pid)       Global.register_name("svc", pid)  -> "yes"
    :global.whereis_name(:svc)             Global.whereis_name("svc")        -> pid
    :global.send(:svc, msg)                Global.send("svc", msg)
    :global.sync()                         Global.sync()                     -> True

Three modules, one concept each: this one is the public ``Global`` and the process
of this node's ``global_name_server`` (its start, and which message goes to which
step); ``_global_sync`` is the protocol that process speaks with the other nodes
(sessions, registrations, partitions); ``_global_names`` is the table it keeps and
how clashes are settled.
"""

from __future__ import annotations

import threading

from . import _etf
from ._channel import flush_waiting
from ._global_names import CALL_TIMEOUT
from ._global_sync import NAME, Server, _me
from ._process import Pid, _table, receive, send, spawn_system
from ._registry import Process

__all__ = ["Global", "disconnecting", "leave", "nodeup", "nodedown", "parting", "serve",
           "take_name"]

Atom = _etf.Atom

# ---------------------------------------------------------------- the process

_servers: dict[int, Server] = {}
_start_lock = threading.Lock()


def _server() -> Server:
    """This node's server, started on first use."""
    dist = _table.dist_required("Global")
    with _start_lock:
        server = _servers.get(id(dist))
        if server is None or server.dist is not dist:
            for stale in _servers.values():       # of a node stopped since: it ends
                send(stale.pid, ("stop",))
            _servers.clear()
            server = _servers[id(dist)] = Server(dist)
            ready = threading.Event()
            spawn_system(_run, server, ready)
            if not ready.wait(CALL_TIMEOUT):
                raise TimeoutError("Global: this node's global_name_server did not start")
    return server


def _run(server: Server, ready: threading.Event) -> None:
    server.pid = _me()
    take_name(server.pid, NAME)
    ready.set()
    _serve(server)


def _serve(server: Server) -> None:
    serve(server.dist, lambda msg: _handle(server, msg), "global_name_server")


def _handle(server: Server, msg) -> None:
    if type(msg) is not tuple or not msg:
        return
    kind = msg[0]
    if kind == "$gen_cast" and len(msg) == 2 and type(msg[1]) is tuple and msg[1]:
        cast = msg[1]
        op = cast[0]
        if op == "init_connect":
            server.init_connect(cast[1], cast[2], cast[3])
        elif op == "lock_set":
            server.lock_set(cast[1], cast[2], cast[4] if len(cast) > 4 else None)
        elif op == "exchange":
            server.exchange(cast[1], cast[2], cast[4])
        elif op == "resolved":
            server.resolved(cast[1], cast[2], cast[3], cast[6])
        elif op == "new_nodes":
            server.new_nodes(cast[2], cast[4])
        elif op == "in_sync":
            server.in_sync(cast[1])
    elif kind == "$gen_call" and len(msg) == 3:
        (frm, tag), request = msg[1], msg[2]
        send(frm, (tag, server.table.answer(request)))
    elif kind == "nodeup":
        server.nodeup(msg[1])
    elif kind == "nodedown":
        server.nodedown(msg[1])
    elif kind == "DOWN":
        server.table.down(msg[1])
    elif kind == "lost_connection" and len(msg) == 5:
        server.lost_connection(msg)
    elif kind == "remove_connection" and len(msg) == 2:
        server.remove_connection(str(msg[1]))
    elif kind == "disconnecting" and len(msg) == 2:
        server.disconnecting(str(msg[1]))
    elif kind == "leaving" and len(msg) == 2:
        server.leaving(str(msg[1]))
    elif kind == "remove_overdue":
        server.remove_overdue(msg[1], msg[2])
    elif kind == "cancel_connect" and len(msg) == 3:
        server.cancel_connect(str(msg[1]), msg[2])
    elif kind == "retry_lock":
        server._lock_set(msg[1])
    elif kind == "api" and len(msg) >= 4:      # ("api", caller, ref, what, *args)
        server.api(*msg[1:])


def serve(dist, handle, what: str) -> None:
    """The loop of a node's own server (global's, pg's scopes'): each message to
    ``handle`` until the node stops. A message that fails is dropped with a log line
    and the server lives on: other nodes must not be able to stop it."""
    while True:
        msg = receive()
        if dist is not _table.dist or msg == ("stop",):     # the node stopped
            return
        try:
            handle(msg)
        except Exception as exc:               # noqa: BLE001 - a bad message is dropped
            dist.log(f"{what} dropped {str(msg)[:200]}: {exc!r}")


def take_name(pid: Pid, name: str) -> None:
    """Register ``pid`` as ``name``, taking it from the process of a node stopped
    since (the process table outlives a node; that process ends at its next message)."""
    with _table.lock:
        stale = _table.names.pop(name, None)
        if stale is not None:
            stale.name = None
    Process.register(pid, name)


def nodeup(dist, node: str) -> None:
    """From _dist: a connection to ``node`` is up (either kind of node)."""
    try:
        if _table.dist is dist:
            send(_server().pid, ("nodeup", node))
    except Exception as exc:                    # noqa: BLE001 - never the connection's end
        dist.log(f"global could not hear of {node}: {exc}")


def leave(dist) -> None:
    """From _dist, as this node stops: each pydist peer hears that we leave (see
    Server.leaving), each item written at once, before the connections close."""
    for node, peer in list(dist.peers.items()):
        if peer.beam is None:
            flush_waiting()                    # so this send is a first: written now
            send((NAME, node), ("leaving", Atom(dist.name)))
    flush_waiting()


def disconnecting(dist, node: str) -> None:
    """From Node.disconnect, as soon as it has closed the connection to ``node``: we
    lost it (Server.disconnecting), at once, as Erlang's disconnect_node gives global
    its nodedown. The reader's nodedown may come much later on a loaded machine, after
    the others, hearing from ``node``, have had us drop them before we told them."""
    server = _servers.get(id(dist))
    if server is not None and server.dist is dist and server.pid is not None:
        send(server.pid, ("disconnecting", node))


def parting(dist, node: str) -> bool:
    """Whether global has asked for the end of our connection to ``node``, or been asked
    for it: what we write to ``node`` now may never arrive (peer's output goes another
    way then)."""
    server = _servers.get(id(dist))
    return server is not None and node in server.removing


def nodedown(dist, node: str) -> None:
    """From _dist: the connection to ``node`` is gone."""
    server = _servers.get(id(dist))
    if server is not None and server.dist is dist and server.pid is not None:
        send(server.pid, ("nodedown", node))


def _api(what: str, *args, timeout: float = CALL_TIMEOUT):
    ref = _table.make_ref()
    send(_server().pid, ("api", _me(), ref, what, *args))
    msg = receive(timeout=timeout, match=lambda m: type(m) is tuple and len(m) == 3
                  and m[0] == "global_answer" and m[1] == ref)
    return msg[2]


def _name(name):
    if isinstance(name, str):
        return Atom(name)
    return name


class Global:
    """Elixir's ``:global``: names for processes, the same on every connected node."""

    @staticmethod
    def register_name(name, pid: Pid) -> str:
        """Elixir: ``:global.register_name(:name, pid)``: ``"yes"``, or ``"no"`` when
        the name (or the pid) is taken already."""
        if not isinstance(pid, Pid):
            raise TypeError(f"Global.register_name takes a name and a pid, not {pid!r}")
        return _api("register", _name(name), pid)

    @staticmethod
    def unregister_name(name) -> None:
        """Elixir: ``:global.unregister_name(:name)``."""
        _api("unregister", _name(name))

    @staticmethod
    def whereis_name(name) -> Pid | None:
        """Elixir: ``:global.whereis_name(:name)``; ``None`` for Elixir's ``:undefined``."""
        return _server().table.holder(_name(name))

    @staticmethod
    def registered_names() -> list:
        """Elixir: ``:global.registered_names()``."""
        return sorted(_server().table.names, key=repr)

    @staticmethod
    def send(name, msg):
        """Elixir: ``:global.send(:name, msg)``: the message, or ValueError if no
        process has that name anywhere."""
        pid = Global.whereis_name(name)
        if pid is None:
            raise ValueError(f"Global.send: no process is registered as {name!r} in the "
                             f"cluster (Global.registered_names() lists them)")
        return send(pid, msg)

    @staticmethod
    def sync(timeout: float = CALL_TIMEOUT) -> bool:
        """Elixir: ``:global.sync()``: wait until every connected node's names are here."""
        return _api("sync", timeout=timeout)
