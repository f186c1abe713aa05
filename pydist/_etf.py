"""The External Term Format: Erlang's bytes for a term, and back.

Elixir/Erlang twin: ``:erlang.term_to_binary/1`` is ``encode`` (here, with the wire
constants and the Python types of terms); ``:erlang.binary_to_term/1`` is
``_etf_decode.decode``. Erlang nodes send every message in this format.

    >>> encode((Atom("add"), 1, "pear"), "py@vm", 1).hex(" ")
    '83 68 03 77 03 61 64 64 61 01 6d 00 00 00 04 70 65 61 72'
    >>> decode(_, 0, "py@vm", 1)                  # _etf_decode
    ((:add, 1, 'pear'), 19)

    Erlang / Elixir                   Python
    :add                              Atom("add"), a str: case ("add", x) matches {:add, x}
    true, false, nil                  True, False, None
    42, 2**100, 1.5                   int, float
    "héllo" (a binary, valid UTF-8)   str
    <<255, 0>> (any other binary)     bytes
    {a, b}, [a, b], 'ab' (charlist)   tuple, list, list of ints ([97, 98])
    %{"k" => v}                       dict
    pid, reference                    Pid, Ref (ErlPid, ErlRef when Erlang's extra fields are set)
    fun, port, bitstring,             Opaque: its exact bytes, sent back verbatim
    improper list, odd map

A map key Python cannot hash (a list, a map) becomes an Opaque of the key's bytes, so the
map stays a dict and goes back to Erlang unchanged. A map whose keys are equal in Python
but not in Erlang (``1`` and ``1.0``, ``:a`` and ``"a"``) becomes an Opaque as a whole.
The specification: the erts "External Term Format" (erl_ext_dist.xml).
"""

from __future__ import annotations

import math
import re
import struct
from itertools import chain
from typing import Any, Iterator

from ._process import AliasTag, Pid, Ref, _table

__all__ = ["Atom", "Opaque", "ErlPid", "ErlRef", "BadTerm", "encode"]

# ---------------------------------------------------------------- wire constants

VERSION = 131               # first byte of every term_to_binary result
COMPRESSED = 80             # UncompressedSize:32, zlib data; only right after VERSION
NEW_FLOAT_EXT = 70          # IEEE 754 double, big-endian
BIT_BINARY_EXT = 77         # Len:32, Bits:8 (bits used in the last byte), Data
ATOM_CACHE_REF = 82         # needs DIST_HDR_ATOM_CACHE, which this node never sets
NEW_PID_EXT = 88            # Node, ID:32, Serial:32, Creation:32
NEW_PORT_EXT = 89           # Node, ID:32, Creation:32
NEWER_REFERENCE_EXT = 90    # Len:16, Node, Creation:32, ID:32 * Len
SMALL_INTEGER_EXT = 97      # 0..255
INTEGER_EXT = 98            # signed 32 bits
FLOAT_EXT = 99              # 31 bytes of "%.20e" text (before NEW_FLOAT_EXT)
ATOM_EXT = 100              # Len:16, Latin-1 name (OTP 25's term_to_binary still writes it)
PORT_EXT = 102              # Node, ID:32, Creation:8
PID_EXT = 103               # Node, ID:32, Serial:32, Creation:8
SMALL_TUPLE_EXT = 104       # Arity:8, elements
LARGE_TUPLE_EXT = 105       # Arity:32, elements
NIL_EXT = 106               # []
STRING_EXT = 107            # Len:16, bytes: a list of small integers (a charlist)
LIST_EXT = 108              # Len:32, elements, tail (NIL_EXT when proper)
BINARY_EXT = 109            # Len:32, Data
SMALL_BIG_EXT = 110         # n:8, Sign:8, n digits base 256, least significant first
LARGE_BIG_EXT = 111         # n:32, Sign:8, digits
NEW_FUN_EXT = 112           # Size:32 (counting itself), Arity, Uniq:128, Index, NumFree, ...
EXPORT_EXT = 113            # Module, Function, Arity: fun Mod:Fun/Arity
NEW_REFERENCE_EXT = 114     # Len:16, Node, Creation:8, ID:32 * Len
SMALL_ATOM_EXT = 115        # Len:8, Latin-1 name
MAP_EXT = 116               # Arity:32, key, value, key, value...
ATOM_UTF8_EXT = 118         # Len:16, UTF-8 name
SMALL_ATOM_UTF8_EXT = 119   # Len:8, UTF-8 name
V4_PORT_EXT = 120           # Node, ID:64, Creation:32
# REFERENCE_EXT (101) and FUN_EXT (117) left OTP in release 23: unknown tags here.

MAX_DEPTH = 1000                    # nesting bound: hostile input must not exhaust the stack
MAX_UNCOMPRESSED = 64 << 20         # a zlib bomb stops here
MAX_ATOM_CHARS = 255                # Erlang's own limit
MAX_REF_WORDS = 5                   # the spec: NEWER_REFERENCE_EXT's Len is at most 5

_NAMES = {v: k for k, v in list(globals().items()) if k.endswith(("_EXT", "_REF", "SSED"))}
_U8, _U16, _U32, _I32, _F64 = (struct.Struct(f) for f in (">B", ">H", ">I", ">i", ">d"))
_TAG_U8, _TAG_U16, _TAG_U32 = (struct.Struct(f) for f in (">BB", ">BH", ">BI"))
_TAG_I32, _TAG_F64 = struct.Struct(">Bi"), struct.Struct(">Bd")
_PID_TAIL, _OLD_PID_TAIL = struct.Struct(">III"), struct.Struct(">IIB")
_BITS_HEAD = struct.Struct(">IB")
_BIG_HEAD = {SMALL_BIG_EXT: struct.Struct(">BB"), LARGE_BIG_EXT: struct.Struct(">IB")}
_ATOM_LEN = {SMALL_ATOM_EXT: _U8, SMALL_ATOM_UTF8_EXT: _U8, ATOM_EXT: _U16, ATOM_UTF8_EXT: _U16}
_PORT_TAIL = {PORT_EXT: 5, NEW_PORT_EXT: 8, V4_PORT_EXT: 12}
_SPECIAL_ATOMS = {"true": True, "false": False, "nil": None}
_NO_ATOM_CACHE = ": atom cache references need DIST_HDR_ATOM_CACHE, never set by this node"


class BadTerm(ValueError):
    """Bytes that are not a well-formed term: Erlang's ``binary_to_term`` says ``badarg``."""


# ---------------------------------------------------------------- the Python side of terms

_PLAIN_ATOM = re.compile(r"[^\W\d][\w@]*[?!]?")                   # prints as :add
_ALIAS = re.compile(r"Elixir(\.[A-Z][A-Za-z0-9_]*)+")            # prints as Kernel


class Atom(str):
    """An Erlang atom (Elixir: ``:add``). A str, so ``Atom("add") == "add"`` and
    ``case ("add", sender, product)`` matches the message ``{:add, from, product}``.

        >>> Atom("add"), Atom("with space")
        (:add, :"with space")
    """

    __slots__ = ()

    def __repr__(self) -> str:
        name = str(self)
        if _ALIAS.fullmatch(name):
            return name[len("Elixir."):]
        if _PLAIN_ATOM.fullmatch(name):
            return f":{name}"
        return ':"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Opaque:
    """A term Python has no value for (a fun, a port, a bitstring, an improper list...),
    kept as its exact bytes (without the 131 version byte) and sent back as they are.
    ``repr`` shows what it is: ``#Opaque<fun>``."""

    __slots__ = ("kind", "data")

    def __init__(self, kind: str, data: bytes):
        self.kind, self.data = kind, bytes(data)

    def __repr__(self) -> str:
        return f"#Opaque<{self.kind}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, Opaque) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)


class ErlPid(Pid):
    """A pid with Erlang's extra fields (serial, creation), kept so that it goes back bit
    for bit. Never local: one named after this node but of another creation is from an
    earlier run of a node of that name, and Erlang would not deliver to it either."""

    __slots__ = ("serial", "creation")

    def __init__(self, node: str, num: int, serial: int = 0, creation: int = 0):
        self._node, self.num, self.serial, self.creation = node, num, serial, creation

    def __eq__(self, other) -> bool:
        return type(other) is ErlPid and self.__reduce__() == other.__reduce__()

    __hash__ = Pid.__hash__

    def __reduce__(self):
        return (ErlPid, (self._node, self.num, self.serial, self.creation))


class ErlRef(Ref):
    """A reference with Erlang's extra fields: all its ID words (``num`` is the first)
    and its creation."""

    __slots__ = ("ids", "creation")

    def __init__(self, node: str, ids: tuple[int, ...], creation: int = 0):
        self._node, self.num, self.ids, self.creation = node, ids[0], tuple(ids), creation

    def __eq__(self, other) -> bool:
        return type(other) is ErlRef and self.__reduce__() == other.__reduce__()

    __hash__ = Ref.__hash__

    def __repr__(self) -> str:             # Erlang prints the words last first
        words = ".".join(str(w) for w in reversed(self.ids))
        return f"#Reference<{_table.node_index(self._node)}.{words}>"

    def __reduce__(self):
        return (ErlRef, (self._node, self.ids, self.creation))


def _remote(cls, node: str, num: int):
    # Not cls(node, num), which makes local a pid named like the node this process runs:
    # here only local_node, the node the caller speaks for, decides.
    ident = cls.__new__(cls)
    ident._node, ident.num = node, num
    return ident


# ---------------------------------------------------------------- encoding

def encode(term: Any, local_node: str, local_creation: int) -> bytes:
    """Elixir: ``:erlang.term_to_binary(term)``: the bytes of ``term``, 131 first.

    ``local_node`` and ``local_creation`` name this node in the pids and refs it made.
    Raises TypeError for a value Erlang has no form for (a function, a set, an object).
    """
    out = bytearray((VERSION,))
    here = (local_node, local_creation)
    # Iterative, so the depth limit is ours, not Python's: a stack of child iterators.
    pending: list[Iterator] = [iter((term,))]
    while pending:
        for item in pending[-1]:
            children = _writer(type(item))(out, item, here)
            if children is not None:
                if len(pending) > MAX_DEPTH:
                    raise ValueError(f"cannot send a term nested deeper than {MAX_DEPTH} "
                                     f"levels (does a list or dict contain itself?)")
                pending.append(children)
                break
        else:
            pending.pop()
    return bytes(out)


_HINTS = {"set": "a list", "frozenset": "a list", "function": "(Atom('mod'), Atom('fun'), args)",
          "builtin_function_or_method": "(Atom('mod'), Atom('fun'), args)"}


def _writer(cls: type):
    for base in cls.__mro__:       # exact type first; a subclass (a namedtuple) as its base
        if base in _WRITERS:
            return _WRITERS[base]
    hint = _HINTS.get(cls.__name__, "atoms, numbers, str, bytes, tuples, lists, dicts, pids")
    raise TypeError(f"a {cls.__name__} has no Erlang form; send {hint} instead")


def _write_atom(out: bytearray, name: str, here=None) -> None:
    if len(name) > MAX_ATOM_CHARS:
        raise TypeError(f"atom {name[:20]!r}... has {len(name)} characters; Erlang allows "
                        f"{MAX_ATOM_CHARS}: send it as a str (a binary) instead")
    raw = name.encode("utf-8")
    small = len(raw) < 256
    out += (_TAG_U8 if small else _TAG_U16).pack(
        SMALL_ATOM_UTF8_EXT if small else ATOM_UTF8_EXT, len(raw))
    out += raw


def _write_int(out: bytearray, n: int, here) -> None:
    if 0 <= n < 256:
        out += _TAG_U8.pack(SMALL_INTEGER_EXT, n)
    elif -2**31 <= n < 2**31:
        out += _TAG_I32.pack(INTEGER_EXT, n)
    else:
        size = (abs(n).bit_length() + 7) // 8
        tag = SMALL_BIG_EXT if size < 256 else LARGE_BIG_EXT
        out.append(tag)
        out += _BIG_HEAD[tag].pack(size, n < 0)
        out += abs(n).to_bytes(size, "little")


def _write_float(out: bytearray, x: float, here) -> None:
    if not math.isfinite(x):
        raise ValueError(f"Erlang floats are finite; {x!r} cannot be sent")
    out += _TAG_F64.pack(NEW_FLOAT_EXT, x)


def _write_binary(out: bytearray, data, here) -> None:
    data = data.encode("utf-8") if isinstance(data, str) else data
    out += _TAG_U32.pack(BINARY_EXT, len(data))
    out += data


def _write_tuple(out: bytearray, items: tuple, here):
    n = len(items)
    out += _TAG_U8.pack(SMALL_TUPLE_EXT, n) if n < 256 else _TAG_U32.pack(LARGE_TUPLE_EXT, n)
    return iter(items) if n else None


def _write_list(out: bytearray, items: list, here):
    if not items:
        out.append(NIL_EXT)
    elif len(items) < 65536 and all(type(x) is int and 0 <= x < 256 for x in items):
        out += _TAG_U16.pack(STRING_EXT, len(items))     # as Erlang writes [1, 2, 3]
        out += bytes(items)
    else:
        out += _TAG_U32.pack(LIST_EXT, len(items))
        return chain(items, ([],))                         # the NIL tail of a proper list
    return None


def _write_dict(out: bytearray, d: dict, here):
    out += _TAG_U32.pack(MAP_EXT, len(d))
    return chain.from_iterable(d.items()) if d else None


def _write_pid(out: bytearray, pid: Pid, here) -> None:
    # This node's: its name and creation. Another pydist node's: serial and creation 0.
    out.append(NEW_PID_EXT)
    _write_atom(out, here[0] if pid._node is None else pid._node)
    creation = here[1] if pid._node is None else getattr(pid, "creation", 0)
    out += _PID_TAIL.pack(pid.num, getattr(pid, "serial", 0), creation)


def _write_ref(out: bytearray, ref: Ref, here) -> None:
    ids = getattr(ref, "ids", (ref.num, 0, 0))      # three words, as Erlang's own refs
    out += _TAG_U16.pack(NEWER_REFERENCE_EXT, len(ids))
    _write_atom(out, here[0] if ref._node is None else ref._node)
    out += _U32.pack(here[1] if ref._node is None else getattr(ref, "creation", 0))
    out += struct.pack(f">{len(ids)}I", *ids)


def _write_alias(out: bytearray, tag: AliasTag, here):
    out += _TAG_U32.pack(LIST_EXT, 1)                     # [alias | Ref]: improper
    return (Atom("alias"), tag.ref)


_WRITERS = {
    bool: lambda out, b, here: _write_atom(out, "true" if b else "false"),
    type(None): lambda out, _, here: _write_atom(out, "nil"),
    Atom: _write_atom, int: _write_int, float: _write_float,
    str: _write_binary, bytes: _write_binary, bytearray: _write_binary,
    tuple: _write_tuple, list: _write_list, dict: _write_dict,
    Pid: _write_pid, Ref: _write_ref, AliasTag: _write_alias,
    Opaque: lambda out, opaque, here: out.extend(opaque.data),
}
