"""Serving calls from other nodes: ``rpc.call``, ``rpc.cast``, ``Node.spawn``.

Erlang's twin is the ``rex`` server of every node, which runs each incoming
``:rpc.call`` in a process of its own. Here each call runs on a thread of the
node's call pool (``_pool``), never in the connection's reader, with the caller as
its group leader: what it prints goes back to the caller (``_console``).

A function named by module and function (``"operator", "add"``) is looked up here;
a function sent by value arrives as bytes and is loaded here, so that one this node
cannot load is answered with a clear ``BadRpc("undef")``.
"""

from __future__ import annotations

import builtins
import importlib
import sys
import threading
from typing import Callable

from . import _transport as wire
from ._errors import BadRpc, user_traceback
from ._process import Pid, _table, running_call, spawn

__all__ = ["serve", "apply_here", "unpack"]

SYNC_LIMIT = 5.0               # seconds a SYNC may ask this node to wait, at most

_resolved: dict[tuple[str, str], tuple[object, Callable]] = {}


def _resolve(mod: str, fun: str, node: str) -> Callable:
    """``("os.path", "join")`` -> os.path.join; dotted names reach into classes too:
    ``("pydist", "Node.self")``, and built-in types stand for modules: ``("str",
    "upper")``. Missing pieces raise BadRpc("undef"). Remembered while the module
    stays the one imported (an rpc server calls the same few functions again and again)."""
    known = _resolved.get((mod, fun))
    if known is not None and sys.modules.get(mod) is known[0]:
        return known[1]
    parts = mod.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            rest = parts[i:]
            break
        except ModuleNotFoundError as exc:
            if exc.name not in (".".join(parts[:j]) for j in range(1, i + 1)):
                raise                            # the module exists but its import failed
    else:
        if not hasattr(builtins, parts[0]):
            raise BadRpc("undef", node, f"no module named {mod!r} on {node}")
        obj, rest = builtins, parts                # "str", "upper": a built-in type
    module = obj
    try:
        for attr in rest + fun.split("."):
            obj = getattr(obj, attr)
    except AttributeError:
        raise BadRpc("undef", node, f"{mod}.{fun} does not exist on {node}") from None
    if not callable(obj):
        raise BadRpc("undef", node, f"{mod}.{fun} on {node} is not a function")
    if module is sys.modules.get(mod):
        _resolved[(mod, fun)] = (module, obj)
    return obj


def apply_here(mod, fun, args: list, node: str):
    try:
        target = fun if mod is None else _resolve(mod, fun, node)
        return target(*args)
    except BadRpc:
        raise
    except Exception as exc:
        raise remote_error(exc, node) from None


def remote_error(exc: BaseException, node: str) -> BadRpc:
    text = user_traceback(exc)
    return BadRpc("exception", node, f"{type(exc).__name__}: {exc}",
                  remote_type=type(exc).__name__, remote_message=str(exc),
                  remote_traceback=text)


def unpack(payload: bytes | tuple, node: str) -> tuple:
    """The function part of a CALL or SPAWN. A function travels as bytes, decoded
    apart from the rest, so that one this node cannot load is answered with a clear
    BadRpc instead of silence; a module and function name travel as they are."""
    if isinstance(payload, tuple):
        return payload
    [value] = wire.decode_frame(payload)
    if isinstance(value, wire.Undecodable):
        raise BadRpc("undef", node, f"{node} cannot load the function it was sent "
                     f"({value.error}); a function from a module travels by reference, so "
                     f"that module must be importable on {node} too")
    return value


def serve(dist, peer, item: tuple) -> None:
    """Run one CALL, SPAWN or SYNC from ``peer`` in this thread and send the reply."""
    op, ref, caller = item[0], item[1], item[2]
    if op == wire.SYNC:                        # "tell me once your processes are quiet"
        _table.quiet(min(float(item[3]), SYNC_LIMIT))
        ok, value, want_reply = True, None, True
    elif op == wire.SPAWN:
        try:
            fun, args = unpack(item[3], dist.name)
            ok, value = True, spawn(fun, *args, group_leader=Pid(peer.name, caller))
        except BadRpc as exc:
            ok, value = False, exc
        want_reply = True
    else:
        ok, value = _run_call(dist, peer, caller, item[3])
        want_reply = item[4]
    if want_reply:
        try:
            data = wire.encode_parts((wire.REPLY, ref, ok, value))
        except TypeError as exc:
            data = wire.encode_parts((wire.REPLY, ref, False, BadRpc(
                "exception", dist.name, f"the result cannot be sent back: {exc}",
                remote_type="TypeError", remote_message=str(exc))))
        peer.channel.send(data)


def _run_call(dist, peer, caller: int, payload) -> tuple[bool, object]:
    me = threading.get_ident()
    _table.serving.add(me)
    try:
        with running_call(Pid(peer.name, caller)):
            mod, fun, args = unpack(payload, dist.name)
            return True, apply_here(mod, fun, args, dist.name)
    except BadRpc as exc:
        return False, exc
    except BaseException as exc:          # SystemExit and the like: still an answer
        return False, remote_error(exc, dist.name)
    finally:
        _table.serving.discard(me)
