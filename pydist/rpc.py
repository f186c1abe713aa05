"""rpc: run a function on another node (Erlang's ``:rpc``).

    rpc.call("b@vm", "operator", "add", [1, 2])      # Elixir: :rpc.call(:b@vm, Kernel, :+, [1, 2])
    rpc.call("b@vm", my_function, [42])    # a function from this notebook travels by value

Failures raise ``BadRpc`` with a ``reason``: ``"nodedown"``, ``"timeout"``,
``"undef"`` (no such module or function there) or ``"exception"`` (the function
raised; the remote traceback is part of the message, marked as remote).

The function runs in a fresh process on the other node whose group leader is the
caller: what it prints comes back and appears here, before ``call`` returns.
"""

from __future__ import annotations

import builtins
import importlib
import sys
import threading
from typing import Any, Callable

from . import _transport as wire
from ._errors import BadRpc, user_traceback
from ._process import Pid, _table

__all__ = ["call", "cast", "multicall"]


def _split(what: str, node, args: tuple) -> tuple:
    """``(node, "mod", "fun", [args])`` or ``(node, fun, [args])`` -> (mod, fun, args)."""
    if not isinstance(node, str) or "@" not in node:
        raise TypeError(f"{what}: the first argument is a node name like 'b@vm', not {node!r}")
    if args and isinstance(args[0], str):
        if len(args) not in (2, 3) or not isinstance(args[1], str):
            raise TypeError(f"{what}(node, 'module', 'function', [args]): got {args!r}")
        mod, fun, fargs = args[0], args[1], (args[2] if len(args) == 3 else [])
    elif args and callable(args[0]):
        if len(args) not in (1, 2):
            raise TypeError(f"{what}(node, function, [args]): got {args!r}")
        mod, fun, fargs = None, args[0], (args[1] if len(args) == 2 else [])
    else:
        raise TypeError(f"{what}: give a module and function name, {what}(node, 'operator', "
                        f"'add', [1, 2]), or a function, {what}(node, fun, [args])")
    if not isinstance(fargs, (list, tuple)):
        raise TypeError(f"{what}: the arguments are a list, e.g. [1, 2], not {fargs!r}")
    return mod, fun, list(fargs)


def _check_timeout(timeout) -> None:
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f"timeout is seconds (a number > 0) or None, not {timeout!r}")


def call(node: str, *args, timeout: float | None = None) -> Any:
    """Elixir: ``:rpc.call(node, Mod, :fun, [args], timeout)``. Returns the result.

    ``timeout=None`` waits as long as the node is up (Erlang's ``:infinity``); the
    call fails at once with ``BadRpc("nodedown")`` if the node is lost meanwhile.
    """
    mod, fun, fargs = _split("rpc.call", node, args)
    _check_timeout(timeout)
    dist = _table.dist
    if dist is None:
        raise BadRpc("nodedown", node, "this process is not a node: call Node.start('name') "
                     "first")
    if node == dist.name:
        return _apply_here(mod, fun, fargs, node)
    payload = (mod, fun, fargs) if mod is not None else wire.encode((mod, fun, fargs))
    return dist.request(node, wire.CALL, payload, True, timeout=timeout)


def cast(node: str, *args) -> bool:
    """Elixir: ``:rpc.cast(node, Mod, :fun, [args])``. Fire and forget; returns True."""
    mod, fun, fargs = _split("rpc.cast", node, args)
    dist = _table.dist
    if dist is not None:
        me = _table.current().pid.num
        dist.send_item(node, (wire.CALL, next(_table.refs), me, wire.encode((mod, fun, fargs)),
                              False))
    return True


def multicall(*args, timeout: float | None = None) -> tuple[list, list]:
    """Elixir: ``:rpc.multicall(nodes, Mod, :fun, [args])`` -> ``(results, bad_nodes)``.

    Without a list of nodes, calls this node and every connected one. A call that
    raised there gives a ``BadRpc`` in ``results``; unreachable nodes (and timeouts)
    are listed in ``bad_nodes``.
    """
    if args and isinstance(args[0], (list, tuple)):
        nodes, rest = list(args[0]), args[1:]
    else:
        from ._node import Node
        nodes, rest = [Node.self(), *Node.list()], args
    results, bad = [], []
    for node in nodes:
        try:
            results.append(call(node, *rest, timeout=timeout))
        except BadRpc as exc:
            if exc.reason in ("nodedown", "timeout"):
                bad.append(node)
            else:
                results.append(exc)
    return results, bad


# ---------------------------------------------------------------- the serving side

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


def _apply_here(mod, fun, args: list, node: str):
    try:
        target = fun if mod is None else _resolve(mod, fun, node)
        return target(*args)
    except BadRpc:
        raise
    except Exception as exc:
        raise _remote_error(exc, node) from None


def _remote_error(exc: BaseException, node: str) -> BadRpc:
    text = user_traceback(exc)
    return BadRpc("exception", node, f"{type(exc).__name__}: {exc}",
                  remote_type=type(exc).__name__, remote_message=str(exc),
                  remote_traceback=text)


def _unpack(payload: bytes | tuple, node: str) -> tuple:
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


def _serve(dist, peer, item: tuple) -> None:
    """Run one CALL (or SYNC) from ``peer`` in this thread and send the reply."""
    if item[0] == wire.SYNC:
        _table.quiet(1.0)
        peer.channel.send(wire.encode_parts((wire.REPLY, item[1], True, None)))
        return
    _, ref, caller, payload, want_reply = item
    local = _table.local
    local.leader, local.proc = Pid(peer.name, caller), None   # a process only if it asks self()
    me = threading.get_ident()
    _table.serving.add(me)
    try:
        mod, fun, args = _unpack(payload, dist.name)
        ok, value = True, _apply_here(mod, fun, args, dist.name)
    except BadRpc as exc:
        ok, value = False, exc
    except BaseException as exc:          # SystemExit and the like: still an answer
        ok, value = False, _remote_error(exc, dist.name)
    finally:
        if local.proc is not None:
            _table.exit(local.proc, "normal")
        local.leader = local.proc = None
        _table.serving.discard(me)
    if want_reply:
        try:
            data = wire.encode_parts((wire.REPLY, ref, ok, value))
        except TypeError as exc:
            data = wire.encode_parts((wire.REPLY, ref, False, BadRpc(
                "exception", dist.name, f"the result cannot be sent back: {exc}",
                remote_type="TypeError", remote_message=str(exc))))
        peer.channel.send(data)
