"""What BEAM tools ask a node, answered in Erlang's shapes: ``:rpc.call(py, :erlang,
:node, [])``, ``:erlang.memory``, ``:erlang.system_info``, ``:erlang.statistics``,
``:erlang.process_info``, ``:erlang.is_process_alive``, ``:erlang.registered`` and
``:os.getpid`` — the questions observer, ``:rpc.multicall`` scripts and
``Node.spawn``'s callers send to every node of a cluster.

Erlang strings (``:os.getpid()``, ``system_info(:otp_release)``) are charlists: lists
of character codes. A question with no Python twin gets ``badarg``, as a BIF would.
"""

from __future__ import annotations

import os
import resource
import sys
import time

from . import _etf
from ._errors import BadRpc
from ._process import USER, Pid, _table

__all__ = ["BIFS"]

Atom = _etf.Atom
_STARTED = time.monotonic()
_last = {"runtime": 0, "wall_clock": 0}


def _charlist(text: str) -> list[int]:
    return [ord(c) for c in text]


def _badarg(what: str):
    raise BadRpc("badarg", _table.name, f"{what}: not answered by a Python node")


def _memory(kind=None):
    """The node's peak resident size; a thread's memory is not counted apart, so
    ``processes`` is 0 and everything is ``system``."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    table = [(Atom("total"), rss), (Atom("processes"), 0), (Atom("system"), rss)]
    if kind is None:
        return table
    sizes = dict(table)
    return sizes[kind] if kind in sizes else _badarg(f"erlang:memory({kind})")


def _process_limit() -> int:
    """The OS's limit of threads for this user (a process is a thread), else Erlang's
    default limit."""
    soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    return soft if soft != resource.RLIM_INFINITY else 262144


def _system_info(item):
    answers = {
        "process_count": lambda: len(_table.procs),
        "process_limit": _process_limit,
        "port_count": lambda: 0,
        "schedulers": lambda: os.cpu_count() or 1,
        "schedulers_online": lambda: os.cpu_count() or 1,
        "logical_processors": lambda: os.cpu_count() or 1,
        "otp_release": lambda: _charlist("pydist"),
        "system_version": lambda: _charlist(f"pydist on Python {sys.version.split()[0]}\n"),
        "wordsize": lambda: 8,
    }
    answer = answers.get(str(item))
    return answer() if answer else _badarg(f"erlang:system_info({item})")


def _statistics(item):
    ms = int((time.monotonic() - _STARTED) * 1000)
    if item in ("runtime", "wall_clock"):
        total = int(time.process_time() * 1000) if item == "runtime" else ms
        since, _last[item] = total - _last[item], total
        return (total, since)
    if item == "run_queue":
        return 0
    if item == "reductions":
        return (0, 0)
    return _badarg(f"erlang:statistics({item})")


def _process_info(pid, item=None):
    if not isinstance(pid, Pid):
        return _badarg("erlang:process_info")
    proc = _table.lookup(pid) if pid.is_local() else None
    if proc is None:
        return Atom("undefined")
    facts = {"registered_name": Atom(proc.name) if proc.name else [],
             "status": Atom("waiting" if proc.idle else "running"),
             "message_queue_len": len(proc.mailbox), "messages": proc.messages(),
             "links": sorted(proc.links, key=repr), "trap_exit": proc.trap_exit,
             "group_leader": proc.group_leader or Pid(None, USER),
             "dictionary": [], "current_function": (Atom("python"), Atom("thread"), 0)}
    if item is None:
        return [(Atom(key), value) for key, value in facts.items() if key != "messages"]
    if str(item) not in facts:
        return _badarg(f"erlang:process_info(pid, {item})")
    return (Atom(item), facts[str(item)])


def _alive(pid):
    return isinstance(pid, Pid) and pid.is_local() and _table.lookup(pid) is not None


BIFS = {
    ("erlang", "node"): lambda: Atom(_table.name),
    ("erlang", "memory"): _memory,
    ("erlang", "system_info"): _system_info,
    ("erlang", "statistics"): _statistics,
    ("erlang", "process_info"): _process_info,
    ("erlang", "is_process_alive"): _alive,
    ("erlang", "registered"): lambda: [Atom(name) for name in sorted(_table.names)],
    ("os", "getpid"): lambda: _charlist(str(os.getpid())),
}
