"""Elixir's ``GenServer``: a server process written as callbacks, and OTP's call shapes.

    defmodule Stock do                        class Stock(GenServer):
      use GenServer                               def init(self, arg):
      def init(arg), do: {:ok, arg}                   return ("ok", arg)
      def handle_call(:get, _from, s),            def handle_call(self, req, from_, s):
        do: {:reply, s, s}                            return ("reply", s, s)
    end                                       Stock.start_link({}, name="stock")
    GenServer.call(Stock, :get)               GenServer.call("stock", "get")

It speaks OTP's messages, so either side may be Elixir:

    GenServer.call    {:"$gen_call", {pid, [:alias | ref]}, request}, answered
                      {[:alias | ref], reply} to the alias (OTP 24+): once the caller
                      stops waiting the alias is gone, so a late reply is dropped
    GenServer.cast    {:"$gen_cast", request}
    :sys.get_state    {:system, from, :get_state}, and get_status, suspend, resume

A server started with ``start_link`` inside a call from another node (an Elixir
Supervisor's child spec ``{:rpc, :call, [py_node, Mod, :start_link, [arg]]}``) is linked
to the process that asked, so the Supervisor can stop and restart it. A server that
traps exits (``Process.flag("trap_exit", True)`` in ``init``) runs ``terminate`` when
its parent stops it, as in OTP.
"""

from __future__ import annotations

from typing import Any

from . import _etf
from ._errors import ProcessExit, check_seconds
from ._global import Global
from ._process import AliasTag, Pid, Ref, _table, alias_send, receive, send, spawn
from ._registry import Process
from ._signals import me, spawn_link
from ._transport import ALIAS_SEND

__all__ = ["GenServer"]

CALL_TIMEOUT = 5.0              # seconds, as OTP's 5000 ms
Atom = _etf.Atom


class GenServer:
    """Subclass it and override the callbacks; each returns OTP's tuples:

    - ``init(arg)`` -> ``("ok", state)`` or ``("stop", reason)``
    - ``handle_call(request, from_, state)`` -> ``("reply", reply, state)``,
      ``("noreply", state)`` (answer later with ``GenServer.reply(from_, reply)``) or
      ``("stop", reason, reply, state)``
    - ``handle_cast(request, state)`` / ``handle_info(msg, state)`` -> ``("noreply",
      state)`` or ``("stop", reason, state)``
    - ``terminate(reason, state)``: on a stop, and on the parent's exit if trapping.
    """

    def init(self, arg):
        return ("ok", arg)

    def handle_call(self, request, from_, state):
        raise NotImplementedError(f"{type(self).__name__}.handle_call is not written: "
                                  f"it got {request!r}")

    def handle_cast(self, request, state):
        raise NotImplementedError(f"{type(self).__name__}.handle_cast is not written: "
                                  f"it got {request!r}")

    def handle_info(self, msg, state):
        return ("noreply", state)                 # as OTP's default (which logs it)

    def terminate(self, reason, state):
        return None

    # ------------------------------------------------------------ starting

    @classmethod
    def start(cls, arg=None, name=None, timeout: float = CALL_TIMEOUT):
        """Elixir: ``GenServer.start(Mod, arg, name: name)``: ``("ok", pid)``, or
        ``("error", reason)`` (``("already_started", pid)`` for a taken name).
        ``name`` is a local name or ``("global", name)``."""
        return _start(cls, arg, name, timeout, link=False)

    @classmethod
    def start_link(cls, arg=None, name=None, timeout: float = CALL_TIMEOUT):
        """Elixir: ``GenServer.start_link(Mod, arg, name: name)``: as ``start``, and the
        server is linked to the caller (inside a call from another node: its caller)."""
        return _start(cls, arg, name, timeout, link=True)

    # ------------------------------------------------------------ talking to one

    @staticmethod
    def call(server, request, timeout: float | None = CALL_TIMEOUT):
        """Elixir: ``GenServer.call(server, request, timeout)``, timeout in seconds.
        The reply; if none comes in time, or the server dies, the caller exits with
        ``ProcessExit`` (``("timeout", ...)``, ``("noproc", ...)``), as in Elixir, and
        nothing of the call is left in its mailbox."""
        check_seconds("GenServer.call(..., timeout)", timeout)
        where = _where(server, "call")
        caller = me()
        ref = Process.monitor(where)
        with _table.lock:                                  # the alias: replies go here
            _table.aliases[ref.num] = caller
            caller.aliases.add(ref.num)
        tag = AliasTag(ref)
        try:
            try:
                send(where, (Atom("$gen_call"), (caller.pid, tag), request))
            except ValueError:
                if not isinstance(where, str):     # a malformed (name, node): say so
                    Process.demonitor(ref, flush=True)
                    raise
                # no local process by that name: the monitor's DOWN (noproc) is here
                # already, and the caller exits with it below, as in Elixir
            msg = receive(timeout, match=lambda m: type(m) is tuple and len(m) in (2, 5) and (
                m[0] == tag if len(m) == 2 else m[0] == "DOWN" and m[1] == ref))
        except TimeoutError:
            msg = None
        finally:
            with _table.lock:                              # a late reply is dropped
                _table.aliases.pop(ref.num, None)
                caller.aliases.discard(ref.num)
        if msg is not None and len(msg) == 2:
            Process.demonitor(ref, flush=True)
            return msg[1]
        what = (Atom("GenServer"), Atom("call"), [server, request, timeout])
        if msg is None:
            Process.demonitor(ref, flush=True)
            raise ProcessExit((Atom("timeout"), what),
                              f"GenServer.call({server!r}, {request!r}): no reply within "
                              f"{timeout} s; the server is busy or never replies (give a "
                              f"longer timeout, or check its handle_call)")
        reason = msg[4]
        if reason == "noconnection":
            reason = (Atom("nodedown"), _node_of(where))
        why = "is not there: start it first, or check its name" if reason == "noproc" \
            else f"exited with {reason!r} (its handle_call crashed?)"
        raise ProcessExit((reason, what), f"GenServer.call({server!r}, {request!r}): the "
                          f"server {why}")

    @staticmethod
    def cast(server, request) -> str:
        """Elixir: ``GenServer.cast(server, request)``: always ``"ok"``, even if nobody
        is there (as in Elixir)."""
        try:
            send(_where(server, "cast"), (Atom("$gen_cast"), request))
        except ValueError:                          # a local name nobody has: dropped
            pass
        return "ok"

    @staticmethod
    def reply(from_, value) -> str:
        """Elixir: ``GenServer.reply(from, reply)``, for a ``handle_call`` that returned
        ``("noreply", state)``."""
        if not (type(from_) is tuple and len(from_) == 2 and isinstance(from_[0], Pid)):
            raise TypeError(f"GenServer.reply takes the from_ handle_call got, not {from_!r}")
        pid, tag = from_
        if type(tag) is AliasTag:
            ref = tag.ref
            if ref.is_local():
                alias_send(ref, (tag, value))
            elif _table.dist is not None:
                _table.dist.send_item(ref.node, (ALIAS_SEND, ref, (tag, value)))
        else:
            send(pid, (tag, value))
        return "ok"

    @staticmethod
    def multi_call(nodes, name: str, request, timeout: float = CALL_TIMEOUT):
        """Elixir: ``GenServer.multi_call(nodes, name, request)``: ``(replies,
        bad_nodes)``, replies a list of ``(node, reply)``."""
        caller = me()
        waiting = {}
        for node in nodes:
            ref = Process.monitor((name, node))
            waiting[ref] = node
            send((name, node), (Atom("$gen_call"), (caller.pid, (ref, node)), request))
        replies, bad = [], []
        try:
            while waiting:
                msg = receive(timeout, match=lambda m: type(m) is tuple and (
                    (len(m) == 2 and _is_tag(m[0]) and m[0][0] in waiting)
                    or (len(m) == 5 and m[0] == "DOWN" and m[1] in waiting)))
                ref = msg[0][0] if len(msg) == 2 else msg[1]
                node = waiting.pop(ref)
                if len(msg) == 2:
                    replies.append((node, msg[1]))
                    Process.demonitor(ref, flush=True)
                else:
                    bad.append(node)
        except TimeoutError:
            for ref, node in waiting.items():
                Process.demonitor(ref, flush=True)
                bad.append(node)
        caller.remove(lambda m: type(m) is tuple and len(m) == 2 and _is_tag(m[0])
                      and m[0][0] in waiting)
        return sorted(replies, key=lambda r: str(r[0])), sorted(bad)

    @staticmethod
    def stop(server, reason="normal", timeout: float = CALL_TIMEOUT) -> str:
        """Elixir: ``GenServer.stop(server)``: runs its ``terminate``, waits until it is
        gone."""
        where = _where(server, "stop")
        ref = Process.monitor(where)
        send(where, (Atom("system"), (me().pid, ref), (Atom("terminate"), reason)))
        try:
            down = receive(timeout, match=lambda m: type(m) is tuple and len(m) == 5
                           and m[0] == "DOWN" and m[1] == ref)
        except TimeoutError:
            Process.demonitor(ref, flush=True)
            raise ProcessExit(Atom("timeout"), f"GenServer.stop({server!r}): it did not "
                              f"stop within {timeout} s") from None
        if down[4] == "noproc":
            raise ProcessExit(Atom("noproc"), f"GenServer.stop({server!r}): no such server")
        me().remove(lambda m: type(m) is tuple and len(m) == 2 and m[0] == ref)
        return "ok"


# ---------------------------------------------------------------- the server's loop

def _start(cls, arg, name, timeout: float, link: bool):
    if not (isinstance(cls, type) and issubclass(cls, GenServer)):
        raise TypeError(f"GenServer.start: {cls!r} is not a GenServer subclass")
    caller = me()
    parent = getattr(_table.local, "caller", None) if link else None
    parent = parent or caller.pid
    starter = spawn_link if link and parent == caller.pid else spawn
    pid = starter(_serve, cls(), arg, name, caller.pid, parent if link else None)
    ref = Process.monitor(pid)
    try:
        ack = receive(timeout, match=lambda m: type(m) is tuple and (
            (len(m) == 3 and m[0] == "ack" and m[1] == pid)
            or (len(m) == 5 and m[0] == "DOWN" and m[1] == ref)))
    except TimeoutError:
        Process.exit(pid, "kill")
        Process.demonitor(ref, flush=True)
        return (Atom("error"), Atom("timeout"))
    Process.demonitor(ref, flush=True)
    if ack[0] == "DOWN":
        return (Atom("error"), ack[4])
    return ack[2]


def _serve(server: GenServer, arg, name, starter: Pid, parent: Pid | None) -> None:
    pid = me().pid
    if parent is not None and parent != starter:
        Process.link(parent)                  # a remote caller's (a Supervisor's) link
    if name is not None:
        taken = _register(name, pid)
        if taken is not None:
            send(starter, ("ack", pid, (Atom("error"), (Atom("already_started"), taken))))
            return
    try:
        result = server.init(arg)
    except Exception as exc:
        send(starter, ("ack", pid, (Atom("error"), exc)))
        raise
    if _is(result, "stop", 2):
        send(starter, ("ack", pid, (Atom("error"), result[1])))
        raise ProcessExit(result[1], f"init stopped: {result[1]!r}")
    if not _is(result, "ok", 2):                      # the starter hears it, as OTP's
        send(starter, ("ack", pid, (Atom("error"), (Atom("bad_return_value"), result))))
        raise ValueError(f"{type(server).__name__}.init returned {result!r}; "
                         f"expected ('ok', state) or ('stop', reason)")
    send(starter, ("ack", pid, (Atom("ok"), pid)))
    _loop(server, result[1], parent)


def _loop(server: GenServer, state, parent: Pid | None) -> None:
    suspended = False
    while True:
        msg = receive(match=(lambda m: _is(m, "system", 3)) if suspended else None)
        if _is(msg, "system", 3):
            state, suspended = _system(server, state, msg[1], msg[2], suspended)
            continue
        if _is(msg, "$gen_call", 3):
            from_, request = msg[1], msg[2]
            result = server.handle_call(request, from_, state)
            if _is(result, "reply", 3):
                GenServer.reply(from_, result[1])
                state = result[2]
                continue
            if _is(result, "stop", 4):
                GenServer.reply(from_, result[2])
                _stop(server, result[1], result[3])
        elif _is(msg, "$gen_cast", 2):
            result = server.handle_cast(msg[1], state)
        elif _is(msg, "EXIT", 3) and msg[1] == parent:    # trapping: the parent stops us
            _stop(server, msg[2], state)
        else:
            result = server.handle_info(msg, state)
        if _is(result, "noreply", 2):
            state = result[1]
        elif _is(result, "stop", 3):
            _stop(server, result[1], result[2])
        else:
            raise ValueError(_bad_return(server, msg, result))


def _bad_return(server: GenServer, msg, result) -> str:
    """Which callback returned what for which request, and what it may return."""
    later = "('noreply', state) or ('stop', reason, state)"
    if _is(msg, "$gen_call", 3):
        callback, about = "handle_call", msg[2]
        later = "('reply', reply, state), ('noreply', state) or ('stop', reason, reply, state)"
    elif _is(msg, "$gen_cast", 2):
        callback, about = "handle_cast", msg[1]
    else:
        callback, about = "handle_info", msg
    return f"{type(server).__name__}.{callback} returned {result!r} for {about!r}; " \
           f"expected {later}"


def _system(server: GenServer, state, from_, request, suspended: bool):
    """OTP's system messages (``:sys``): get_state, get_status, suspend, resume."""
    what = request[0] if type(request) is tuple else request
    if what == "get_state":
        answer = state
    elif what == "get_status":
        pid = me().pid
        misc = [(Atom("header"), f"Status for generic server {pid!r}"),
                (Atom("data"), [("Status", Atom("suspended" if suspended else "running")),
                                ("Parent", pid), ("Logged events", [])]),
                (Atom("data"), [("State", state)])]
        answer = (Atom("status"), pid, (Atom("module"), Atom("gen_server")),
                  [[], Atom("suspended" if suspended else "running"), pid, [], misc])
    elif what in ("suspend", "resume"):
        answer, suspended = Atom("ok"), what == "suspend"
    elif what == "terminate":
        GenServer.reply(from_, Atom("ok"))
        _stop(server, request[1], state)
    else:
        answer = (Atom("error"), (Atom("unsupported"), request))
    GenServer.reply(from_, answer)
    return state, suspended


def _stop(server: GenServer, reason, state):
    server.terminate(reason, state)
    raise ProcessExit(reason, f"{type(server).__name__} stopped: {reason!r}")


# ---------------------------------------------------------------- helpers

def _is(msg: Any, head: str, size: int) -> bool:
    return type(msg) is tuple and len(msg) == size and msg[0] == head


def _is_tag(tag) -> bool:
    return type(tag) is tuple and len(tag) == 2 and isinstance(tag[0], Ref)


def _where(server, what: str):
    """A pid, a local name, ``(name, node)`` or ``("global", name)``, to send to."""
    if _is(server, "global", 2):
        pid = Global.whereis_name(server[1])
        if pid is None:
            raise ProcessExit((Atom("noproc"), (Atom("GenServer"), Atom(what), [server])),
                              f"GenServer.{what}: no process is registered globally as "
                              f"{server[1]!r}")
        return pid
    if isinstance(server, (Pid, str)) or (type(server) is tuple and len(server) == 2):
        return server
    raise TypeError(f"GenServer.{what} takes a pid, a name, (name, node) or "
                    f"('global', name), not {server!r}")


def _node_of(where) -> str:
    return where.node if isinstance(where, Pid) else (
        where[1] if type(where) is tuple else _table.name)


def _register(name, pid: Pid):
    """Register ``name``; the pid holding it already, or None."""
    if _is(name, "global", 2):
        return None if Global.register_name(name[1], pid) == "yes" else \
            Global.whereis_name(name[1])
    holder = Process.whereis(name)
    if holder is not None:
        return holder
    Process.register(pid, name)
    return None
