"""Reading the External Term Format: Erlang's ``binary_to_term``, for bytes from a peer.

The writing half, the wire constants and the Python types of terms are in ``_etf``.
Bytes from a BEAM node are hostile until proven otherwise: every length is checked
against the bytes left before anything is allocated, a compressed term inflates to its
declared size at most, and anything malformed raises ``BadTerm``: nothing else escapes
``decode``.

What bounds memory is the bytes received, as in OTP, and no count of terms or depth:
a container claims no more terms than bytes are left (every term takes one at least),
so a message of N bytes (N inflated bytes, if compressed) decodes to at most N terms,
about 70 bytes of Python objects each. Decoding is iterative (a list as the stack), so
a term nested a million deep decodes without Python's recursion limit; a map key
nested deeper than ``KEY_DEPTH`` is kept as its bytes (an Opaque), since hashing it
would recurse in C.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any

from ._etf import (  # the wire constants and the types of terms
    _ATOM_LEN,
    _BIG_HEAD,
    _BITS_HEAD,
    _F64,
    _I32,
    _NAMES,
    _NO_ATOM_CACHE,
    _OLD_PID_TAIL,
    _PID_TAIL,
    _PORT_TAIL,
    _SPECIAL_ATOMS,
    _U8,
    _U16,
    _U32,
    ATOM_CACHE_REF,
    ATOM_EXT,
    BINARY_EXT,
    BIT_BINARY_EXT,
    COMPRESSED,
    EXPORT_EXT,
    FLOAT_EXT,
    INTEGER_EXT,
    LARGE_TUPLE_EXT,
    LIST_EXT,
    MAP_EXT,
    MAX_ATOM_CHARS,
    MAX_REF_WORDS,
    MAX_UNCOMPRESSED,
    NEW_FLOAT_EXT,
    NEW_FUN_EXT,
    NEW_PID_EXT,
    NEW_REFERENCE_EXT,
    NEWER_REFERENCE_EXT,
    NIL_EXT,
    PID_EXT,
    SMALL_ATOM_EXT,
    SMALL_INTEGER_EXT,
    SMALL_TUPLE_EXT,
    STRING_EXT,
    VERSION,
    Atom,
    BadTerm,
    ErlPid,
    ErlRef,
    Opaque,
    _remote,
)
from ._process import AliasTag, Pid, Ref

__all__ = ["decode", "BadMessage"]

class BadMessage(BadTerm):
    """A message term that does not decode after a sound control message: the frame's
    length still holds, so that message alone is refused and the connection kept."""


KEY_DEPTH = 1000             # a map key nested deeper stays bytes: hash() recurses in C

# ---------------------------------------------------------------- decoding: scalars

class _Input:
    """The bytes being decoded, a position in them, and where the current term began.
    Every read is checked against the bytes left before anything is allocated."""

    __slots__ = ("view", "pos", "start", "node", "creation")

    def __init__(self, view: memoryview, pos: int, node: str, creation: int):
        self.view, self.pos, self.start, self.node, self.creation = view, pos, pos, node, creation

    def bad(self, problem: str) -> BadTerm:
        tag = self.view[self.start]
        return BadTerm(f"{_NAMES.get(tag, tag)} at offset {self.start} {problem}")

    def unpack(self, st: struct.Struct) -> tuple:
        if self.pos + st.size > len(self.view):
            raise self.bad("is cut short")
        self.pos += st.size
        return st.unpack_from(self.view, self.pos - st.size)

    def take(self, size: int) -> memoryview:
        if size > len(self.view) - self.pos:       # a claimed length is not a promise
            raise self.bad(f"claims {size} bytes; {len(self.view) - self.pos} are left")
        self.pos += size
        return self.view[self.pos - size:self.pos]

    def whole(self) -> memoryview:
        return self.view[self.start:self.pos]


def _atom_name(inp: _Input, tag: int) -> str:
    if tag not in _ATOM_LEN:
        raise inp.bad(f"holds tag {_NAMES.get(tag, tag)} where an atom belongs"
                      + _NO_ATOM_CACHE * (tag == ATOM_CACHE_REF))
    raw = inp.take(inp.unpack(_ATOM_LEN[tag])[0])
    try:
        name = str(raw, "latin-1" if tag in (ATOM_EXT, SMALL_ATOM_EXT) else "utf-8")
    except UnicodeDecodeError:
        raise inp.bad("has an atom that is not UTF-8") from None
    if len(name) > MAX_ATOM_CHARS:
        raise inp.bad(f"has an atom of {len(name)} characters, over Erlang's {MAX_ATOM_CHARS}")
    return name


def _read_scalar(inp: _Input, tag: int):
    """A term with no terms inside, the commonest first (as OTP's dec_term switches)."""
    if tag in _ATOM_LEN:
        name = _atom_name(inp, tag)
        return _SPECIAL_ATOMS[name] if name in _SPECIAL_ATOMS else Atom(name)
    if tag == SMALL_INTEGER_EXT:
        return inp.unpack(_U8)[0]
    if tag == INTEGER_EXT:
        return inp.unpack(_I32)[0]
    if tag == BINARY_EXT:
        raw = inp.take(inp.unpack(_U32)[0])
        try:
            return str(raw, "utf-8")                 # an Elixir string
        except UnicodeDecodeError:
            return bytes(raw)
    if tag == NIL_EXT:
        return []
    if tag == STRING_EXT:                            # a charlist: 'ab' is [97, 98]
        return list(inp.take(inp.unpack(_U16)[0]))
    if tag in (NEW_PID_EXT, PID_EXT):
        return _read_pid(inp, tag)
    if tag in (NEWER_REFERENCE_EXT, NEW_REFERENCE_EXT):
        return _read_ref(inp, tag)
    if tag in _BIG_HEAD:
        size, negative = inp.unpack(_BIG_HEAD[tag])
        n = int.from_bytes(inp.take(size), "little")
        return -n if negative else n
    if tag == NEW_FLOAT_EXT:
        x = inp.unpack(_F64)[0]
    elif tag == FLOAT_EXT:
        try:
            x = float(bytes(inp.take(31)).rstrip(b"\0").decode("ascii"))
        except ValueError:                           # UnicodeDecodeError is one too
            raise inp.bad("is not a number") from None
    elif tag in _PORT_TAIL:
        _atom_name(inp, inp.unpack(_U8)[0])
        inp.take(_PORT_TAIL[tag])
        return Opaque("port", inp.whole())
    else:                                            # BIT_BINARY_EXT
        size, bits = inp.unpack(_BITS_HEAD)
        if bits > 8:
            raise inp.bad(f"has {bits} bits in its last byte")
        inp.take(size)
        return Opaque("bitstring", inp.whole())
    if not math.isfinite(x):                         # Erlang refuses them as well
        raise inp.bad("is not finite")
    return x


def _read_pid(inp: _Input, tag: int) -> Pid:
    node = _atom_name(inp, inp.unpack(_U8)[0])
    num, serial, creation = inp.unpack(_PID_TAIL if tag == NEW_PID_EXT else _OLD_PID_TAIL)
    if serial == 0 and node == inp.node and creation in (inp.creation, 0):
        return Pid(None, num)
    if serial == creation == 0:                      # as another pydist node writes its pids
        return _remote(Pid, node, num)
    return ErlPid(node, num, serial, creation)


def _read_ref(inp: _Input, tag: int) -> Ref:
    (count,) = inp.unpack(_U16)
    node = _atom_name(inp, inp.unpack(_U8)[0])
    (creation,) = inp.unpack(_U32 if tag == NEWER_REFERENCE_EXT else _U8)
    if not 1 <= count <= MAX_REF_WORDS:
        raise inp.bad(f"has {count} ID words")
    ids = struct.unpack(f">{count}I", inp.take(4 * count))
    if ids[1:] == (0, 0) and node == inp.node and creation in (inp.creation, 0):
        return Ref(None, ids[0])
    if ids[1:] == (0, 0) and creation == 0:          # as another pydist node writes its refs
        return _remote(Ref, node, ids[0])
    return ErlRef(node, ids, creation)


_SCALARS = {*_ATOM_LEN, SMALL_INTEGER_EXT, INTEGER_EXT, BINARY_EXT, NIL_EXT, STRING_EXT,
            NEW_PID_EXT, PID_EXT, NEWER_REFERENCE_EXT, NEW_REFERENCE_EXT, *_BIG_HEAD,
            NEW_FLOAT_EXT, FLOAT_EXT, *_PORT_TAIL, BIT_BINARY_EXT}


# ---------------------------------------------------------------- decoding: containers

class _Open:
    """A container being decoded: its tag, where it starts, how many terms it awaits."""

    __slots__ = ("tag", "start", "size", "items", "end", "height")

    def __init__(self, tag: int, start: int, size: int, end: int = -1):
        self.tag, self.start, self.size, self.items, self.end = tag, start, size, [], end
        self.height = 1                  # containers nested in it, itself included


def _open(inp: _Input, tag: int) -> _Open:
    end = -1
    if tag == NEW_FUN_EXT:                   # then Module, OldIndex, OldUniq, Pid, free vars
        (size,) = inp.unpack(_U32)
        end = inp.start + 1 + size
        if size < 29 or end > len(inp.view):
            raise inp.bad(f"claims a size of {size} bytes")
        inp.take(21)                                       # Arity, Uniq, Index
        count = 4 + inp.unpack(_U32)[0]
    elif tag == EXPORT_EXT:
        count = 3                                          # Module, Function, Arity
    else:
        (count,) = inp.unpack(_U8 if tag == SMALL_TUPLE_EXT else _U32)
        count = 2 * count if tag == MAP_EXT else count + 1 if tag == LIST_EXT else count
    if count > len(inp.view) - inp.pos:          # every term takes a byte at least
        raise inp.bad(f"claims {count} terms; {len(inp.view) - inp.pos} bytes are left")
    return _Open(tag, inp.start, count, end)


def _close(inp: _Input, frame: _Open):
    """The value of a container whose terms are all in ``frame.items``."""
    tag, items, whole = frame.tag, frame.items, inp.view[frame.start:inp.pos]
    if tag in (SMALL_TUPLE_EXT, LARGE_TUPLE_EXT):
        return tuple(items)
    if tag == LIST_EXT:
        tail = items.pop()
        if type(tail) is list:             # NIL_EXT (or a charlist: still a proper list)
            return items + tail
        if items == ["alias"] and isinstance(tail, Ref):  # gen:call's tag, OTP 24+
            return AliasTag(tail)
        return Opaque("improper list", whole)
    if tag == MAP_EXT:
        d = dict(zip(items[::2], items[1::2], strict=True))
        return d if 2 * len(d) == len(items) else Opaque("map", whole)
    if tag == NEW_FUN_EXT and inp.pos != frame.end:
        raise BadTerm(f"NEW_FUN_EXT at offset {frame.start} ends at {inp.pos}, not at its "
                      f"declared {frame.end}")
    return Opaque("export" if tag == EXPORT_EXT else "fun", whole)


_CONTAINERS = {SMALL_TUPLE_EXT, LARGE_TUPLE_EXT, LIST_EXT, MAP_EXT, NEW_FUN_EXT, EXPORT_EXT}
_KEY_KINDS = {list: "list", dict: "map", tuple: "tuple"}


def _decode_term(inp: _Input) -> Any:
    # Iterative: nesting is bounded by the bytes, never by Python's stack.
    stack: list[_Open] = []
    height = 0                             # of the value just completed (0: a scalar)
    while True:
        inp.start = start = inp.pos
        if start >= len(inp.view):
            raise BadTerm(f"term cut short at offset {start}")
        tag = inp.view[start]
        inp.pos += 1
        if tag in _SCALARS:
            value, height = _read_scalar(inp, tag), 0
        elif tag in _CONTAINERS:
            frame = _open(inp, tag)
            if frame.size:
                stack.append(frame)
                continue
            value, height = _close(inp, frame), 1
        else:
            raise BadTerm(f"unknown tag {_NAMES.get(tag, tag)} at offset {start}"
                          + _NO_ATOM_CACHE * (tag == ATOM_CACHE_REF))
        while stack:                       # hand the value to the containers it completes
            frame = stack[-1]
            if height >= frame.height:
                frame.height = height + 1
            if frame.tag == MAP_EXT and len(frame.items) % 2 == 0:
                value = _hashable_key(value, inp.view[start:inp.pos], height)
            frame.items.append(value)
            if len(frame.items) < frame.size:
                break
            stack.pop()
            start, value, height = frame.start, _close(inp, frame), frame.height
        else:
            return value


def _hashable_key(key, raw: memoryview, height: int) -> Any:
    if height > KEY_DEPTH:                 # hash() of a deep tuple would exhaust C's stack
        return Opaque(_KEY_KINDS.get(type(key), "term"), raw)
    try:
        hash(key)
        return key
    except TypeError:                      # a list or a map as a key: keep its bytes
        return Opaque(_KEY_KINDS.get(type(key), "term"), raw)


def decode(data, offset: int, local_node: str, local_creation: int) -> tuple[Any, int]:
    """Elixir: ``:erlang.binary_to_term(data)``: the term at ``data[offset]`` (its 131
    version byte) and the offset just past it. ``data`` is bytes or a memoryview.

    A pid or ref of ``local_node`` (with ``local_creation``, or 0) is a local Pid or Ref.
    Raises BadTerm, and nothing else, for any bytes that are not a well-formed term.
    """
    view = memoryview(data)
    if not 0 <= offset < len(view) or view[offset] != VERSION:
        raise BadTerm(f"no version byte {VERSION} at offset {offset} of {len(view)} bytes")
    inp = _Input(view, offset + 1, local_node, local_creation)
    if offset + 1 == len(view) or view[offset + 1] != COMPRESSED:
        return _decode_term(inp), inp.pos
    inp.pos += 1
    (size,) = inp.unpack(_U32)
    if not 0 < size <= MAX_UNCOMPRESSED:
        raise inp.bad(f"claims {size} bytes uncompressed; the limit is {MAX_UNCOMPRESSED}")
    inflater = zlib.decompressobj()
    try:                                   # one byte more than declared shows a lie
        raw = inflater.decompress(view[inp.pos:], size + 1)
    except zlib.error as exc:
        raise inp.bad(f"is not zlib data: {exc}") from None
    if len(raw) != size or not inflater.eof:
        raise inp.bad(f"does not inflate to the {size} bytes it declares")
    inner = _Input(memoryview(raw), 0, local_node, local_creation)
    value = _decode_term(inner)
    if inner.pos != size:
        raise inp.bad(f"has {size - inner.pos} bytes after its term")
    return value, len(view) - len(inflater.unused_data)
