"""Pids and references. Elixir: ``#PID<0.112.0>``, ``#Reference<0.1.2.3>``,
``:erlang.pid_to_list/1``, and the ``[alias | ref]`` tag of ``GenServer.call``.

A pid is a number on a node. This node's own are kept without their node's name, so
they follow the node when it starts, stops or is renamed; how they print needs the
process table (the number this node gives each other node), which ``_process`` sets
here as ``_table`` when it makes it.
"""

from __future__ import annotations

__all__ = ["Pid", "Ref", "AliasTag", "pid_to_list"]

_table = None                   # the process table (set by _process)


class _Ident:
    """A pid or a reference: a number on a node. ``_node is None`` means this node."""

    __slots__ = ("_node", "num")

    def __init__(self, node: str | None, num: int):
        # This node's own are kept as None, so they follow it when it starts or stops.
        self._node = None if node == _table.name else node
        self.num = num

    @property
    def node(self) -> str:
        """The node this pid lives on (Elixir: ``node(pid)``)."""
        return self._node or _table.name

    def is_local(self) -> bool:
        return self._node is None

    def __eq__(self, other) -> bool:
        if type(other) is not type(self) or other.num != self.num:
            return False
        return other._node == self._node or other.node == self.node

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.num))

    def __reduce__(self):
        # Rebuilt by the class itself: pids travel in many messages, so no helper calls.
        return (type(self), (self._node or _table.name, self.num))


class Pid(_Ident):
    """A process identifier. ``repr`` is Elixir's ``#PID<0.112.0>``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"#PID{pid_to_list(self)}"


class Ref(_Ident):
    """A unique reference (Elixir: ``make_ref()``), e.g. from ``Process.monitor``."""

    __slots__ = ()

    def __repr__(self) -> str:
        index = 0 if self._node is None else _table.node_index(self._node)
        return f"#Reference<{index}.{self.num}>"


class AliasTag:
    """The tag of a ``GenServer.call`` made with an alias (OTP 24+): Erlang's
    ``[alias | Ref]``. A reply to it goes to the alias, which the caller deactivates
    when it stops waiting: a late reply is dropped, never left in its mailbox."""

    __slots__ = ("ref",)

    def __init__(self, ref: Ref):
        self.ref = ref

    def __eq__(self, other) -> bool:
        return type(other) is AliasTag and other.ref == self.ref

    def __hash__(self) -> int:
        return hash(("alias", self.ref))

    def __repr__(self) -> str:
        return f"[alias | {self.ref!r}]"

    def __reduce__(self):
        return (AliasTag, (self.ref,))


def pid_to_list(pid: Pid) -> str:
    """Elixir: ``:erlang.pid_to_list(pid)``. ``"<0.112.0>"`` for a local pid; a pid
    of another node starts with the number this node gives that node: ``"<19214.112.0>"``.
    """
    if not isinstance(pid, Pid):
        raise TypeError(f"pid_to_list takes a pid (from self() or spawn()), not {pid!r}")
    index = 0 if pid._node is None else _table.node_index(pid._node)
    return f"<{index}.{pid.num}.{getattr(pid, 'serial', 0)}>"     # an Erlang pid's serial
