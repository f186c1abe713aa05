"""The External Term Format's common case, fast: what most messages are made of.

Elixir's twin is the BEAM's own ``term_to_binary``/``binary_to_term``, written in C.
Here ``_etf`` (writing) and ``_etf_decode`` (reading) are the careful versions: every
term, iterative, with a message for each malformed byte. This module tries first,
recursively and with few checks, the terms a message is usually made of: atoms, small
and 32-bit integers, floats, binaries, tuples, proper lists, maps and pids, nested a
few levels. Anything else, or anything wrong, and it gives up (``_Slow``, or the
IndexError or struct.error of a short read) and the careful version does the whole
term again, so both accept and refuse exactly the same bytes. What bounds memory is
unchanged: a container claims no more terms than bytes are left.
"""

from __future__ import annotations

import struct
from typing import Any

from . import _etf, _etf_decode
from ._etf import (
    _SPECIAL_ATOMS,
    BINARY_EXT,
    COMPRESSED,
    INTEGER_EXT,
    LIST_EXT,
    MAP_EXT,
    NEW_FLOAT_EXT,
    NEW_PID_EXT,
    NIL_EXT,
    SMALL_ATOM_UTF8_EXT,
    SMALL_INTEGER_EXT,
    SMALL_TUPLE_EXT,
    STRING_EXT,
    VERSION,
    Atom,
)
from ._pids import Pid

__all__ = ["encode", "decode", "decode_bare"]

DEPTH = 40                   # deeper than this: the careful (iterative) version
SMALL = 4096                 # terms up to this many bytes are copied, then read fast
ATOM_CACHE = 4096            # atoms remembered by their bytes (a peer may send any number)

_U8, _U16, _U32, _I32, _F64 = (struct.Struct(f).unpack_from
                               for f in (">B", ">H", ">I", ">i", ">d"))
_PID = struct.Struct(">III").unpack_from
_HEAD8, _HEAD32 = struct.Struct(">BB").pack, struct.Struct(">BI").pack
_INT32, _FLOAT = struct.Struct(">Bi").pack, struct.Struct(">Bd").pack
_PID_TAIL = struct.Struct(">III").pack


class _Slow(Exception):
    """Not a common term: the careful version takes it."""


_GIVE_UP = (_Slow, IndexError, struct.error, UnicodeDecodeError, TypeError, ValueError)


# ---------------------------------------------------------------- reading

_atoms: dict[bytes, Any] = {}


def decode(data, offset: int, local_node: str, local_creation: int) -> tuple[Any, int]:
    """``_etf_decode.decode``, the common case first (same arguments, same results)."""
    if offset + 1 < len(data) and data[offset] == VERSION and data[offset + 1] != COMPRESSED:
        return decode_bare(data, offset + 1, local_node, local_creation)
    return _etf_decode.decode(data, offset, local_node, local_creation)


def decode_bare(data, offset: int, local_node: str, local_creation: int) -> tuple[Any, int]:
    """The term at ``data[offset]`` written without its version byte (as in a 'D'
    frame, _fragments), and the offset just past it. BadTerm if malformed."""
    if len(data) - offset <= SMALL:
        small = bytes(data[offset:])       # bytes index and slice faster than a view
        try:
            value, end = _term(small, 0, (local_node, local_creation), DEPTH)
            return value, offset + end
        except _GIVE_UP:
            pass
    inp = _etf_decode._Input(memoryview(data), offset, local_node, local_creation)
    return _etf_decode._decode_term(inp), inp.pos


def _term(view, pos: int, here: tuple, depth: int) -> tuple[Any, int]:
    tag = view[pos]
    if tag == SMALL_ATOM_UTF8_EXT:
        end = pos + 2 + view[pos + 1]
        if end > len(view):
            raise _Slow
        raw = view[pos + 2:end]
        atom = _atoms.get(raw)
        if atom is None:
            name = raw.decode("utf-8")
            atom = _SPECIAL_ATOMS[name] if name in _SPECIAL_ATOMS else Atom(name)
            if len(_atoms) < ATOM_CACHE:
                _atoms[raw] = atom
        return atom, end
    if tag == SMALL_INTEGER_EXT:
        return view[pos + 1], pos + 2
    if tag == BINARY_EXT:
        start = pos + 5
        end = start + _U32(view, pos + 1)[0]
        if end > len(view):
            raise _Slow
        try:
            return str(view[start:end], "utf-8"), end     # an Elixir string
        except UnicodeDecodeError:
            return bytes(view[start:end]), end
    if depth == 0:
        raise _Slow
    depth -= 1
    if tag == SMALL_TUPLE_EXT:
        n, pos = view[pos + 1], pos + 2
        if n == 2:                                       # {tag, value}: the commonest
            first, pos = _term(view, pos, here, depth)
            second, pos = _term(view, pos, here, depth)
            return (first, second), pos
        items, pos = _terms(view, pos, n, here, depth)
        return tuple(items), pos
    if tag == MAP_EXT:
        n, pos = _U32(view, pos + 1)[0], pos + 5
        if 2 * n > len(view) - pos:                      # every term takes a byte at least
            raise _Slow
        d = {}
        for _ in range(n):
            key, pos = _term(view, pos, here, depth)
            d[key], pos = _term(view, pos, here, depth)  # an unhashable key: TypeError
        if len(d) != n:                                  # a repeated key: careful says what
            raise _Slow
        return d, pos
    if tag == NIL_EXT:
        return [], pos + 1
    if tag == LIST_EXT:
        items, pos = _terms(view, pos + 5, _U32(view, pos + 1)[0], here, depth)
        if view[pos] != NIL_EXT:                         # improper
            raise _Slow
        return items, pos + 1
    if tag == INTEGER_EXT:
        return _I32(view, pos + 1)[0], pos + 5
    if tag == STRING_EXT:
        end = pos + 3 + _U16(view, pos + 1)[0]
        if end > len(view):
            raise _Slow
        return list(view[pos + 3:end]), end
    if tag == NEW_FLOAT_EXT:
        x = _F64(view, pos + 1)[0]
        if x - x != 0.0:                                 # inf or nan
            raise _Slow
        return x, pos + 9
    if tag == NEW_PID_EXT:
        node, pos = _term(view, pos + 1, here, 0)
        if type(node) is not Atom:
            raise _Slow
        num, serial, creation = _PID(view, pos)
        if serial == 0 and node == here[0] and creation in (here[1], 0):
            return Pid(None, num), pos + 12
        if serial == creation == 0:
            pid = Pid.__new__(Pid)
            pid._node, pid.num = str(node), num
            return pid, pos + 12
        return _etf.ErlPid(str(node), num, serial, creation), pos + 12
    raise _Slow


def _terms(view, pos: int, n: int, here: tuple, depth: int) -> tuple[list, int]:
    if n > len(view) - pos:                      # every term takes a byte at least
        raise _Slow
    items = []
    append = items.append
    for _ in range(n):
        value, pos = _term(view, pos, here, depth)
        append(value)
    return items, pos


# ---------------------------------------------------------------- writing

def encode(term: Any, local_node: str, local_creation: int) -> bytes:
    """``_etf.encode``, the common case first (same arguments, same bytes)."""
    out = bytearray((VERSION,))
    try:
        _write(out, term, (local_node, local_creation), DEPTH)
    except _Slow:
        return _etf.encode(term, local_node, local_creation)
    return bytes(out)


def _write(out: bytearray, x, here: tuple, depth: int) -> None:
    t = type(x)
    if t is Atom:
        raw = x.encode("utf-8")
        if len(raw) > 255:
            raise _Slow
        out += _HEAD8(SMALL_ATOM_UTF8_EXT, len(raw))
        out += raw
    elif t is str:
        raw = x.encode("utf-8")
        out += _HEAD32(BINARY_EXT, len(raw))
        out += raw
    elif t is int:
        if 0 <= x < 256:
            out += _HEAD8(SMALL_INTEGER_EXT, x)
        elif -2**31 <= x < 2**31:
            out += _INT32(INTEGER_EXT, x)
        else:
            raise _Slow
    elif depth == 0:
        raise _Slow
    elif t is tuple:
        if len(x) > 255:
            raise _Slow
        out += _HEAD8(SMALL_TUPLE_EXT, len(x))
        for item in x:
            _write(out, item, here, depth - 1)
    elif t is dict:
        out += _HEAD32(MAP_EXT, len(x))
        for key, value in x.items():
            _write(out, key, here, depth - 1)
            _write(out, value, here, depth - 1)
    elif t is bytes:
        out += _HEAD32(BINARY_EXT, len(x))
        out += x
    elif t is float:
        if x - x != 0.0:
            raise _Slow                                   # the careful one says why
        out += _FLOAT(NEW_FLOAT_EXT, x)
    elif t is Pid and x._node is None:
        out.append(NEW_PID_EXT)
        _write(out, Atom(here[0]), here, 0)
        out += _PID_TAIL(x.num, 0, here[1])
    elif t is list and not x:
        out.append(NIL_EXT)
    else:                          # lists (a charlist or not), bool, None, others' pids...
        raise _Slow
