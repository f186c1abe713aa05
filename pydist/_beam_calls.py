"""What a BEAM node asks of this node: calls, spawns, and the names that answer here.

Erlang's twins: ``erpc:execute_call`` (each ``:rpc.call``/``:erpc.call`` into this node
is a SPAWN_REQUEST of it, answered by the exit reason of the "process" that ran it),
``rex`` (the rpc server that erl_interface programs ask), and ``net_kernel`` (which
answers ``Node.ping``). Each call runs on the node's call pool (``_pool``), as pydist's
own calls do (``_calls``), with the caller's group leader: what it prints goes back.
The connection's ``_beam.Beam`` writes the answers.
"""

from __future__ import annotations

from . import _etf
from ._bifs import BIFS
from ._calls import _resolve, apply_here, remote_error
from ._errors import BadRpc, ProcessExit
from ._process import Pid, _table, receive, running_call, send, spawn
from ._registry import add_watcher

__all__ = ["SERVICES", "serve_spawn"]

Atom = _etf.Atom


# ---------------------------------------------------------------- the services

def _net_kernel(beam, peer, sender, msg) -> None:
    """``{'$gen_call', {From, Tag}, {is_auth, Node}}``: Node.ping's question."""
    if type(msg) is tuple and len(msg) == 3 and msg[0] == "$gen_call":
        frm, tag = msg[1]
        answer = Atom("yes") if type(msg[2]) is tuple and msg[2][:1] == ("is_auth",) \
            else Atom("not_supported")
        beam.send(peer, frm, (tag, answer))


def _rex(beam, peer, sender, msg) -> None:
    """erl_interface's rpc: ``{From, {call, M, F, A, GL}}`` -> ``{rex, Reply}``."""
    if type(msg) is not tuple or len(msg) != 2 or not isinstance(msg[0], Pid):
        return
    frm, request = msg
    if request == "features_request":
        beam.send(peer, frm, (Atom("features_reply"), Atom(beam.dist.name), [Atom("erpc")]))
    elif type(request) is tuple and len(request) == 5 and request[0] == "call":
        beam.dist.pool.submit(_serve_rex, beam, peer, frm, request)


def _serve_rex(beam, peer, frm, request) -> None:
    _, mod, fun, args, leader = request
    ok, value = _apply(beam, mod, fun, args, leader)
    if not ok:                        # rex's words: {badrpc, {'EXIT', {Reason, Stack}}}
        value = (Atom("badrpc"), (Atom("EXIT"), value[1:]))
    try:
        beam.send(peer, frm, (Atom("rex"), value))
    except (TypeError, ValueError):   # a value with no Erlang form: its text
        beam.send(peer, frm, (Atom("rex"), repr(value)))


SERVICES = {"net_kernel": _net_kernel, "rex": _rex}
# The mesh with BEAM nodes is global's: see _global (its sync connects each node to the
# nodes the other side knows, and never joins a partition global made).


# ---------------------------------------------------------------- serving calls

SPAWN_LINK, SPAWN_MONITOR = 1, 2      # SPAWN_REPLY's flags: what was set up (erts dist.h)


def serve_spawn(beam, peer, control: tuple, args) -> None:
    """A SPAWN_REQUEST: ``erpc:call``/``cast`` (a call on this pool thread), or
    ``Node.spawn(node, M, F, A)`` (a pydist process). Always answered, as erts answers
    every one: a request this node cannot start gets SPAWN_REPLY with ``badarg``."""
    _, ref, caller, leader, mfa, opts = control
    monitor = any(o == "monitor" or (type(o) is tuple and o[:1] == ("monitor",))
                  for o in opts)
    link = "link" in opts
    flags = SPAWN_MONITOR * monitor + SPAWN_LINK * link
    try:
        mod, fun, _arity = mfa
        if not isinstance(args, list):
            raise TypeError("the arguments are not a list")
        if (mod, fun) == ("erpc", "execute_call"):
            tag, mod, fun, args = args
        elif (mod, fun) == ("erpc", "execute_cast"):
            tag, (mod, fun, args) = None, args
        else:                                              # Node.spawn: a process
            try:
                tag = _resolve(str(mod), str(fun), beam.dist.name)
            except (BadRpc, ImportError, SyntaxError):     # as erts: a pid that exits
                tag, args = _undef, [mod, fun, args]       # undef (a fun is Erlang's)
    except (TypeError, ValueError):
        beam.spawn_reply(peer, ref, caller, 0, Atom("badarg"))
        return
    if callable(tag):
        pid = spawn(_started, tag, args, group_leader=leader)
        if monitor:
            add_watcher(ref, caller, pid)
        if link:
            with _table.lock:
                proc = _table.lookup(pid)
                if proc is not None:                       # the caller's end is its own
                    proc.links.add(caller)
        beam.spawn_reply(peer, ref, caller, flags, pid)
        send(pid, _GO)                    # only now: its end is watched
        return
    pid = Pid(None, next(_table.counter))         # the call's "process": this thread
    beam.spawn_reply(peer, ref, caller, flags, pid)
    ok, value = _apply(beam, mod, fun, args, leader, caller)
    if tag is None:                                  # erpc:cast: no answer
        reason = Atom("normal")
    else:
        reason = (tag, Atom("return"), value) if ok else (tag, *value)
    try:
        _ended(beam, peer, pid, caller, ref, monitor, link, reason)
    except (TypeError, ValueError):                  # a value with no Erlang form:
        reason = (tag, Atom("return"), repr(value))  # its text, as Elixir's inspect
        _ended(beam, peer, pid, caller, ref, monitor, link, reason)


def _ended(beam, peer, pid, caller, ref, monitor: bool, link: bool, reason) -> None:
    """Tell the caller the call's "process" ended: its DOWN (erpc's answer), its EXIT."""
    if monitor:
        beam.down(peer, pid, caller, ref, reason)
    if link:
        beam.exit(peer, pid, caller, reason)


_GO = object()


def _undef(mod, fun, args):
    """A function this node does not have: the process exits ``{undef, [{M, F, A, []}]}``
    as on a BEAM node (e.g. ``Node.spawn(py, fn -> ... end)``: Erlang code)."""
    raise ProcessExit((Atom("undef"), [(mod, fun, args, [])]), f"{mod}.{fun} is not defined")


def _started(fun, args: list):
    """A process spawned for a BEAM node: it waits until its watchers are in place."""
    receive(timeout=5, match=lambda m: m is _GO)
    return fun(*args)


def _apply(beam, mod, fun, args, leader, caller: Pid | None = None) -> tuple[bool, object]:
    """Run ``mod.fun(*args)`` with ``leader`` as group leader: (True, value) or (False,
    (Atom("error"), reason, stack)) in erpc's words. What BEAM tools ask every node
    (``erlang:memory()``...) is answered in Erlang's shapes (``_bifs``)."""
    node = beam.dist.name
    try:
        if not isinstance(args, list):
            raise BadRpc("badarg", node, "the arguments are not a list")
        with running_call(leader if isinstance(leader, Pid) else None, caller):
            bif = BIFS.get((str(mod), str(fun)))
            if bif is not None:
                try:
                    return True, bif(*args)
                except TypeError:
                    raise BadRpc("badarg", node, f"{mod}:{fun}/{len(args)}") from None
            return True, apply_here(str(mod), str(fun), args, node)
    except BadRpc as exc:
        why = Atom(exc.reason) if exc.reason in ("undef", "badarg") else \
            (Atom(exc.remote_type or exc.reason), exc.remote_message or exc.detail)
    except BaseException as exc:       # noqa: BLE001 - any failure is the caller's answer
        err = remote_error(exc, node)
        why = (Atom(err.remote_type), err.remote_message)
    stack = [(Atom(str(mod)), Atom(str(fun)), args, [])]      # as erpc's trim_stack
    return False, (Atom("error"), why, stack)


