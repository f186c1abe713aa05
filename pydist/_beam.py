"""The Erlang dialect: what a connection to a BEAM node carries, both ways.

Erlang's twin is the distribution protocol itself (erts's "Distribution Protocol",
``dist.hrl``): after the handshake (``_beam_handshake``), every frame is a 4-byte
length, ``'p'``, a control term and, for the messages that carry one, a message term,
each in the External Term Format (``_etf``). Nothing from a BEAM node is unpickled.

One ``Beam`` object translates for one connection. Out: the node's own items (those
of ``_transport``: SEND, CALL, MONITOR, ...) become control messages. In: control
messages become what the node does for its own peers: a message in a mailbox, a
reply to a waiting caller, a call on the call pool, a DOWN. A few names answer here,
as a BEAM node's would: ``net_kernel`` (``Node.ping``) and ``rex`` (erl_interface's
rpc); ``global_name_server`` and ``pg`` are processes of their own (``_global``, ``pg``).

    Erlang                                  pydist
    send(pid, msg)     SEND / SEND_SENDER   a message in the mailbox
    :rpc.call / erpc   SPAWN_REQUEST        a call on the pool, its value in the DOWN
    Process.monitor    MONITOR_P / _EXIT    a watcher / ("DOWN", ref, ...)
    Process.link       LINK / UNLINK_ID     a link (_signals)
    exit signals       EXIT / EXIT2         _signals.signal: trapped, ignored or fatal
    send(alias, msg)   ALIAS_SEND           GenServer.call's reply, while the alias lives
"""

from __future__ import annotations

import reprlib

from . import _etf, _etf_decode, _etf_fast, _signals
from ._beam_calls import SERVICES, serve_spawn
from ._beam_handshake import FRAGMENTS
from ._beam_handshake import SPAWN as SPAWN_FLAG
from ._calls import unpack
from ._console import console
from ._errors import BadRpc
from ._fragments import HEADER
from ._process import Pid, Ref, alias_send, item_message, running_call
from ._proctable import FIRST_SYSTEM, USER, _table
from ._transport import (
    _FRAME,
    ALIAS_SEND,
    CALL,
    DEMONITOR,
    DOWN,
    EXIT,
    IO,
    LINK,
    MONITOR,
    PING,
    REG_SEND,
    SEND,
    UNLINK,
)
from ._transport import SPAWN as SPAWN_ITEM

__all__ = ["Beam", "IO_SERVER", "REPLIES"]

Atom = _etf.Atom

# ---- control messages (erts "Distribution Protocol"); those marked * carry a message
LINK_OP, SEND_OP, EXIT_OP, REG_SEND_OP, EXIT2 = 1, 2, 3, 6, 8    # SEND*, REG_SEND*
MONITOR_P, DEMONITOR_P, MONITOR_P_EXIT, SEND_SENDER = 19, 20, 21, 22   # SEND_SENDER*
SPAWN_REQUEST, SPAWN_REPLY, UNLINK_ID, UNLINK_ID_ACK = 29, 31, 35, 36   # SPAWN_REQUEST*
ALIAS_SEND_OP = 33                                                     # ALIAS_SEND*
WITH_MESSAGE = {SEND_OP, REG_SEND_OP, SEND_SENDER, SPAWN_REQUEST, ALIAS_SEND_OP}
PASS_THROUGH = 112             # 'p': a frame without the atom cache
# The same sent by a process under seq_trace: its trace token added at that place.
TRACED = {12: (SEND_OP, 3), 13: (EXIT_OP, 3), 16: (REG_SEND_OP, 4), 18: (EXIT2, 3),
          23: (SEND_SENDER, 3), 30: (SPAWN_REQUEST, 6), 32: (SPAWN_REPLY, 5),
          34: (ALIAS_SEND_OP, 2)}

# What each control message we act on holds, checked before anything is done with it,
# as dist.c checks them (a peer that sends another shape is dropped). A "name" is
# an atom; "any" is any term.
SHAPES = {
    LINK_OP: (Pid, Pid), SEND_OP: ("any", Pid), EXIT_OP: (Pid, Pid, "any"),
    REG_SEND_OP: (Pid, "any", Atom), EXIT2: (Pid, Pid, "any"),
    MONITOR_P: (Pid, (Pid, Atom), Ref), DEMONITOR_P: (Pid, (Pid, Atom), Ref),
    MONITOR_P_EXIT: ((Pid, Atom), Pid, Ref, "any"), SEND_SENDER: (Pid, Pid),
    SPAWN_REQUEST: (Ref, Pid, Pid, tuple, list), SPAWN_REPLY: (Ref, Pid, int, "any"),
    UNLINK_ID: (int, Pid, Pid), UNLINK_ID_ACK: (int, Pid, Pid), ALIAS_SEND_OP: (Pid, Ref)}

# ---- pids of this node that are services, not processes (below FIRST_SYSTEM)
IO_SERVER = 2                  # the group leader we give BEAM calls: prints here
REPLIES = 3                    # where answers to our own gen_calls arrive

_NOTHING = object()
HEADS_KEPT = 1024              # control messages kept for sends (see Beam.encode)
EMPTY = Atom("")               # what fills a message's "Unused" field
_SIMPLE_REASONS = {"normal", "noproc", "noconnection", "kill", "killed", "shutdown",
                   "nodedown", "timeout", "undef"}


class Beam:
    """The dialect of one connection to a BEAM node."""

    def __init__(self, dist, name: str, flags: int, creation: int):
        # What the other node said in the handshake (_beam_handshake): what it can do,
        # and which run of that node it is.
        self.dist, self.name, self.flags, self.creation = dist, name, flags, creation
        self._heads: dict = {}         # the control message of a send, by destination
        self._last_control = None      # (bytes, term) of the last send that came

    # ------------------------------------------------------------ terms
    def _frame(self, control: tuple | bytes, msg=_NOTHING) -> tuple[bytes, bytes]:
        node, creation = self.dist.name, self.dist.creation
        head = control if type(control) is bytes else _etf_fast.encode(control, node, creation)
        body = b"" if msg is _NOTHING else _etf_fast.encode(msg, node, creation)
        if self.flags & FRAGMENTS:        # then 'D' frames, terms without 131 (_fragments)
            head, body = HEADER + head[1:], memoryview(body)[1:]
            return _FRAME.pack(len(head) + len(body)) + head, body
        return _FRAME.pack(1 + len(head) + len(body)) + b"p" + head, body

    # ------------------------------------------------------------ out
    def encode(self, item: tuple) -> tuple[bytes, bytes] | None:
        """The node's item as one Erlang frame; None for what a BEAM node does not
        take (the mesh list, SYNC, STOP); TypeError for what cannot cross."""
        op = item[0]
        if op == SEND or op == REG_SEND:
            # A stream goes to few destinations: their control messages are kept.
            head = self._heads.get((op, item[1]))
            if head is None:
                if op == SEND:
                    to = item[1] if isinstance(item[1], Pid) else Pid(self.name, item[1])
                    control = (SEND_OP, EMPTY, to)
                else:
                    control = (REG_SEND_OP, Pid(None, USER), EMPTY, Atom(item[1]))
                head = _etf_fast.encode(control, self.dist.name, self.dist.creation)
                if len(self._heads) >= HEADS_KEPT:
                    self._heads.clear()
                self._heads[(op, item[1])] = head
            return self._frame(head, item_message(item))
        if op == CALL:
            return self._call(*item[1:])
        if op == PING:                    # net_adm:ping's question, answered to REPLIES
            me = Pid(None, REPLIES)
            return self._frame((REG_SEND_OP, me, EMPTY, Atom("net_kernel")),
                               (Atom("$gen_call"), (me, Ref(None, item[1])),
                                (Atom("is_auth"), Atom(self.dist.name))))
        if op == IO:
            request = (Atom("put_chars"), Atom("unicode"), item[4])
            return self._frame((SEND_OP, EMPTY, item[1]),
                               (Atom("io_request"), Pid(None, IO_SERVER), Atom("pydist"),
                                request))
        if op == MONITOR:
            _, ref, watcher, target = item
            what = target if isinstance(target, Pid) else Atom(target[0])
            return self._frame((MONITOR_P, watcher, what, ref))
        if op == DEMONITOR:
            _, ref, watcher, target = item
            what = target if isinstance(target, Pid) else Atom(target[0])
            return self._frame((DEMONITOR_P, watcher, what, ref))
        if op == DOWN:
            _, ref, watcher, target, reason = item
            return self._frame((MONITOR_P_EXIT, target if isinstance(target, Pid)
                                else Atom(target[0]), watcher, ref, _reason(reason)))
        if op == EXIT:                    # a link's signal, or Process.exit's
            _, sender, to, reason, link = item
            return self._frame((EXIT_OP if link else EXIT2, sender, to, _reason(reason)))
        if op == LINK:
            return self._frame((LINK_OP, item[1], item[2]))
        if op == UNLINK:                  # its ack (UNLINK_ID_ACK) needs no answer
            return self._frame((UNLINK_ID, next(_table.refs), item[1], item[2]))
        if op == ALIAS_SEND:
            return self._frame((ALIAS_SEND_OP, Pid(None, USER), item[1]), item[2])
        if op == SPAWN_ITEM:
            raise TypeError("a Python function cannot run on a BEAM node: call one of its "
                            "functions by module and name, e.g. rpc.call(node, "
                            "'Elixir.String', 'upcase', ['hi'])")
        return None

    def _call(self, ref: int, caller: int, payload, reply: bool):
        mod, fun, args = unpack(payload, self.dist.name)
        if mod is None:
            raise TypeError("a Python function cannot run on a BEAM node: name an Erlang or "
                            "Elixir function instead, e.g. rpc.call(node, 'Elixir.String', "
                            "'upcase', ['hi']) or rpc.call(node, 'erlang', 'node', [])")
        if not self.flags & SPAWN_FLAG:   # a C node (erl_interface), say: no erpc there
            raise BadRpc("notsup", self.name, f"{self.name} cannot run calls from other "
                         f"nodes (it does not take spawn requests)")
        me, request = Pid(None, caller), Ref(None, ref)
        if reply:                         # erpc:call: its result comes in the DOWN
            mfa, argv, opts = (Atom("erpc"), Atom("execute_call"), 4), \
                [request, Atom(mod), Atom(fun), list(args)], [Atom("monitor")]
        else:                             # erpc:cast
            mfa, argv, opts = (Atom("erpc"), Atom("execute_cast"), 3), \
                [Atom(mod), Atom(fun), list(args)], []
        return self._frame((SPAWN_REQUEST, request, me, Pid(None, IO_SERVER), mfa, opts),
                           argv)

    # ------------------------------------------------------------ in
    def deliver(self, peer, frame, at: int | None, batch) -> None:
        """One frame from the BEAM node: a 'p' frame (``at`` None), or the control
        message at ``frame[at]`` and terms without version bytes (_fragments). A
        BadTerm (garbage, or a control message of the wrong shape) ends the
        connection, with one line in the log (_reader), as dist.c does; a BadMessage
        (a sound control, a message that does not decode) refuses that message alone."""
        node, creation = self.dist.name, self.dist.creation
        if at is not None:
            decode = _etf_fast.decode_bare
        elif frame[0] != PASS_THROUGH:
            raise _etf.BadTerm(f"frame type {frame[0]} (only 'p' frames are expected)")
        else:
            decode, at = _etf_fast.decode, 1
        last = self._last_control          # a stream repeats its control message
        if last is not None and frame[at:at + len(last[0])] == last[0]:
            control, end = last[1], at + len(last[0])    # a term's bytes end it: the same
        else:
            control, end = decode(frame, at, node, creation)
            control = _checked(control)
            if control[0] in (SEND_OP, REG_SEND_OP, SEND_SENDER):
                self._last_control = (bytes(frame[at:end]), control)
        op = control[0]
        try:
            msg = decode(frame, end, node, creation)[0] if op in WITH_MESSAGE else None
        except _etf.BadTerm as exc:       # the message alone: the control was sound
            raise _etf_decode.BadMessage(f"op {op}: {exc}") from None
        if op == SEND_OP or op == SEND_SENDER:
            self._to_pid(control[2], msg, batch)
            return
        if op == REG_SEND_OP:
            self._to_name(peer, control[1], str(control[3]), msg, batch)
            return
        batch.flush()                     # a signal never overtakes earlier messages
        if op == MONITOR_P:
            _, watcher, target, ref = control
            if isinstance(target, Pid) and target.is_local() and target.num < FIRST_SYSTEM:
                return                    # IO_SERVER, REPLIES: services never go down
            if isinstance(target, Pid) or target not in SERVICES:
                self.dist.watch(peer, ref, watcher, target if isinstance(target, Pid)
                                else (str(target), self.dist.name))
        elif op == DEMONITOR_P:
            _, watcher, target, ref = control
            _forget(target, ref=ref)
        elif op == LINK_OP:
            _signals.remote_link(peer, control[1], control[2])
        elif op == UNLINK_ID:
            _, unlink_id, linker, target = control
            proc = _table.lookup(target) if target.is_local() else None
            if proc is not None:
                proc.links.discard(linker)
            peer.channel.send_later(self._frame((UNLINK_ID_ACK, unlink_id, target, linker)))
        elif op == EXIT_OP or op == EXIT2:
            _, sender, target, reason = control
            if target.is_local():
                _signals.signal(target, sender, reason, link=op == EXIT_OP)
        elif op == ALIAS_SEND_OP:
            alias_send(control[2], msg)
        elif op == MONITOR_P_EXIT:
            _, target, watcher, ref, reason = control
            if self._waiting(ref):        # the end of an erpc call we made
                self.dist.reply(ref.num, *_erpc_result(reason, self.name))
            elif peer.monitors.pop(ref, None) is not None:
                _table.down(watcher, ref, target, reason)
        elif op == SPAWN_REQUEST:
            self.dist.pool.submit(serve_spawn, self, peer, control, msg)
        elif op == SPAWN_REPLY:
            _, ref, _to, _flags, result = control
            if not isinstance(result, Pid) and self._waiting(ref):
                self.dist.reply(ref.num, False, BadRpc(str(result), self.name,
                                f"{self.name} could not start the call ({result})"))
        # UNLINK_ID_ACK, and the messages we never asked for (GROUP_LEADER, ...):
        # nothing to do

    def _waiting(self, ref: Ref) -> bool:
        """Whether ``ref`` is a request of ours, made to this node, still waited for."""
        entry = self.dist.pending.get(ref.num) if ref.is_local() else None
        return entry is not None and entry[1] == self.name

    def _to_pid(self, to, msg, batch) -> None:
        if not isinstance(to, Pid) or not to.is_local():
            return
        if to.num == REPLIES:             # {Ref, yes}: net_kernel's answer to our PING
            if type(msg) is tuple and len(msg) == 2 and isinstance(msg[0], Ref) \
                    and self._waiting(msg[0]):
                self.dist.reply(msg[0].num, True, "pong" if msg[1] == "yes" else "pang")
        elif to.num == IO_SERVER:         # what a call we made printed over there
            self._io_request(msg)
        else:
            proc = _table.procs.get(to.num)
            if proc is not None:
                batch.add(proc, msg)

    def _to_name(self, peer, sender, name: str, msg, batch) -> None:
        service = SERVICES.get(name)
        if service is not None:
            service(self, peer, sender, msg)
            return
        proc = _table.names.get(name)
        if proc is not None:
            batch.add(proc, msg)

    def _io_request(self, msg) -> None:
        """Erlang's io protocol: what a process there printed, its group leader being
        this node (a call we made, or what that call spawned). Shown here, labelled."""
        if type(msg) is tuple and len(msg) == 4 and msg[0] == "io_request":
            self.dist.pool.submit(self._serve_io, *msg[1:])

    def _serve_io(self, sender, reply_as, request) -> None:
        try:
            text = self._io_text(request)
        except Exception:                  # noqa: BLE001 - any failure: {error, request}
            text = None
        if text is not None:
            console.emit(1, text, self.name)
        answer = (Atom("io_reply"), reply_as, Atom("ok") if text is not None
                  else (Atom("error"), Atom("request")))
        peer = self.dist.peers.get(self.name)
        if peer is not None and isinstance(sender, Pid):
            self.send_frame(peer, (SEND_OP, EMPTY, sender), answer)

    def _io_text(self, request) -> str | None:
        """The text of ``{put_chars, [Encoding,] Chars}``; ``{put_chars, [Encoding,] M,
        F, A}`` (io:format) is formatted by the BEAM node itself, with a call there."""
        if type(request) is not tuple or not request:
            return None
        if request[0] == "requests" and len(request) == 2:
            parts = [self._io_text(r) for r in request[1]]
            return None if None in parts else "".join(parts)
        if request[0] != "put_chars" or len(request) not in (2, 3, 4, 5):
            return None
        if len(request) <= 3:
            return _chars(request[-1])
        mod, fun, args = request[-3:]
        with running_call(None):          # the call there needs a process here, briefly
            return _chars(self.dist.request(self.name, CALL, (str(mod), str(fun),
                                                               list(args)), True, timeout=5.0))

    def send_frame(self, peer, control: tuple, msg=_NOTHING) -> None:
        """A control message (and message) from a pool thread, which may block."""
        peer.channel.send(self._frame(control, msg))

    def send(self, peer, to: Pid, msg) -> None:
        """A message to a pid there, from a thread that may not block (send_later)."""
        peer.channel.send_later(self._frame((SEND_OP, EMPTY, to), msg))

    def spawn_reply(self, peer, ref: Ref, caller: Pid, flags: int, result) -> None:
        self.send_frame(peer, (SPAWN_REPLY, ref, caller, flags, result))

    def down(self, peer, pid: Pid, watcher: Pid, ref: Ref, reason) -> None:
        self.send_frame(peer, (MONITOR_P_EXIT, pid, watcher, ref, reason))

    def exit(self, peer, pid: Pid, linked: Pid, reason) -> None:
        self.send_frame(peer, (EXIT_OP, pid, linked, reason))


def _erpc_result(reason, node: str) -> tuple[bool, object]:
    """The exit reason of ``erpc:execute_call`` as (ok, value) for the caller."""
    if type(reason) is tuple and len(reason) >= 3 and reason[1] == "return":
        return True, reason[2]
    if reason == "noconnection":
        return False, BadRpc("nodedown", node, f"the connection to {node} was lost")
    if type(reason) is tuple and len(reason) == 4 and reason[1] == "error":
        term = (Atom("EXIT"), (reason[2], reason[3]))
        what = f"{reason[2]!r}" if reason[2] != "undef" else \
            f"{_mfa(reason[3])} is not defined on {node}"
        return False, BadRpc(term, node, what)
    if type(reason) is tuple and len(reason) == 3:
        term = (Atom("EXIT"), reason[2]) if reason[1] == "exit" else reason[2]
        return False, BadRpc(term, node, f"{reason[1]}: {reason[2]!r}")
    return False, BadRpc((Atom("EXIT"), reason), node, f"{reason!r}")


def _mfa(stack) -> str:
    try:
        mod, fun, args = stack[0][:3]                # Elixir's words: String.upcase/1
        return f"{repr(mod).lstrip(':')}.{fun}/{args if isinstance(args, int) else len(args)}"
    except (TypeError, IndexError, ValueError):
        return "the function"


# ---------------------------------------------------------------- helpers

def _reason(reason):
    """A pydist exit reason as an Erlang term: the usual ones are atoms (``"killed"`` is
    ``:killed``), an exception is ``{:ValueError, "its message"}``, as erpc reports a
    Python error too; a tuple of them, e.g. ``("shutdown", x)``, likewise. (A term with
    no Erlang form goes as its text: Dist.send_signal.)"""
    if isinstance(reason, str):
        return Atom(reason) if reason in _SIMPLE_REASONS else reason
    if isinstance(reason, BaseException):
        return (Atom(type(reason).__name__), str(reason))
    if type(reason) is tuple:
        return tuple(_reason(part) for part in reason)
    return reason


def _chars(data) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    if isinstance(data, list):
        return "".join(chr(c) if isinstance(c, int) else _chars(c) for c in data)
    return str(data)


def _forget(target, ref: Ref) -> None:
    """Drop a monitor (by its ref) on a local process."""
    with _table.lock:
        proc = _table.lookup(target) if isinstance(target, Pid) else \
            _table.names.get(str(target))
        if proc is not None:
            proc.watchers.pop(ref, None)


def _checked(control):
    """``control`` as SHAPES says it must be (a traced one without its trace token);
    BadTerm if it is not. Messages we do not act on pass as they are."""
    if type(control) is not tuple or not control or type(control[0]) is not int:
        raise _etf.BadTerm(f"a control message must be a tuple starting with an op, not "
                           f"{reprlib.repr(control)}")
    if control[0] in TRACED:              # {op, ..., token, ...}: drop the token
        op, at = TRACED[control[0]]
        control = (op, *control[1:at], *control[at + 1:])
    shape = SHAPES.get(control[0])
    if shape is None:
        return control
    if len(control) != 1 + len(shape) or not all(
            kind == "any" or isinstance(value, kind)
            for kind, value in zip(shape, control[1:], strict=True)):
        raise _etf.BadTerm(f"control message {control[0]} of the wrong shape: "
                           f"{reprlib.repr(control)}")
    return control
