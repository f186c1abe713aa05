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

from typing import Any

from . import _transport as wire
from ._calls import apply_here
from ._errors import BadRpc, check_seconds
from ._process import _table

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
    check_seconds("rpc.call(..., timeout=...)", timeout)
    dist = _table.dist
    if dist is None:
        raise BadRpc("nodedown", node, "this process is not a node: call Node.start('name') "
                     "first")
    if node == dist.name:
        return apply_here(mod, fun, fargs, node)
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
