"""The External Term Format codec, against itself and against a real Erlang.

One ``erl -noshell`` runs for the whole module: it evaluates Erlang expressions and
prints ``term_to_binary`` of them, and says whether bytes that Python wrote are,
to ``binary_to_term``, the same term.
"""

from __future__ import annotations

import math
import queue
import random
import shutil
import struct
import subprocess
import threading
import time
import tracemalloc
import zlib

import pytest

from pydist import Atom as PublicAtom
from pydist._etf import (
    MAX_DEPTH,
    Atom,
    BadTerm,
    ErlPid,
    ErlRef,
    Opaque,
    encode,
)
from pydist._etf_decode import decode
from pydist._process import Pid, Ref

NODE, CREATION = "py@vm", 3          # this node, as the codec is told


def enc(term) -> bytes:
    return encode(term, NODE, CREATION)


def dec(data: bytes, offset: int = 0):
    return decode(data, offset, NODE, CREATION)


def same(a, b) -> bool:
    """Equal, and of the same types all the way down (1 is not True, "a" is not :a)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    return a == b


def roundtrip(term):
    data = enc(term)
    value, end = dec(data)
    assert end == len(data), f"decode stopped at {end} of {len(data)} bytes"
    return value


# ---------------------------------------------------------------- the Python side of terms

def test_atom_is_a_str_that_prints_like_elixir():
    assert Atom("add") == "add" and isinstance(Atom("add"), str)
    assert PublicAtom is Atom, "pydist re-exports Atom"
    assert [repr(Atom(n)) for n in ("add", "ok?", "été", "with space", 'a"b',
                                    "Elixir.String.Chars", "")] == \
        [":add", ":ok?", ":été", ':"with space"', ':"a\\"b"', "String.Chars", ':""']
    match (Atom("add"), 1):
        case ("add", n):
            assert n == 1
        case _:
            pytest.fail('case ("add", n) must match {:add, 1}')


def test_opaque_equality_is_by_bytes():
    assert Opaque("fun", b"\x01") == Opaque("port", b"\x01")
    assert Opaque("fun", b"\x01") != Opaque("fun", b"\x02")
    assert repr(Opaque("fun", b"")) == "#Opaque<fun>"
    assert len({Opaque("fun", b"\x01"), Opaque("fun", b"\x01")}) == 1


def test_erlang_pids_and_refs_keep_their_fields():
    pid = ErlPid("a@vm", 42, 1, 7)
    assert isinstance(pid, Pid) and not pid.is_local() and pid.node == "a@vm"
    assert pid == ErlPid("a@vm", 42, 1, 7) and pid != ErlPid("a@vm", 42, 1, 8)
    assert hash(pid) == hash(ErlPid("a@vm", 42, 1, 7))
    assert repr(pid).startswith("#PID<") and repr(pid).endswith(".42.1>")
    ref = ErlRef("a@vm", (5, 6, 7), 9)
    assert isinstance(ref, Ref) and ref.num == 5 and repr(ref).endswith(".7.6.5>")
    assert ref == ErlRef("a@vm", (5, 6, 7), 9) and ref != ErlRef("a@vm", (5, 6, 7), 1)
    import pickle
    assert pickle.loads(pickle.dumps(pid)) == pid and pickle.loads(pickle.dumps(ref)) == ref


# ---------------------------------------------------------------- encoding and decoding

ROUND_TRIPS = [
    Atom("add"), Atom("with space"), Atom("été"), Atom("x" * 255), Atom("é" * 255),
    True, False, None,
    0, 255, 256, -1, 2**31 - 1, -2**31, 2**31, -2**31 - 1, 2**100, -2**100, 2**3000, -2**3000,
    0.0, 1.5, -1e300, 5e-324,
    "", "héllo wörld 😀", b"\xff\x00", [], [1, 2, 3], [0, 255], [256], [1000, "x", [Atom("a")]],
    list(range(70000)), (), (1,), tuple(range(300)), (Atom("add"), (1, (2, (3,))), []),
    {}, {"name": "pear", "qty": 3}, {Atom("a"): {(1, 2): [None]}},
    Pid(None, 7), Ref(None, 9), Pid("b@vm", 3), Ref("b@vm", 4),
    ErlPid("a@vm", 42, 1, 7), ErlRef("a@vm", (5, 6, 7), 9), ErlRef("a@vm", (5,), 9),
    Opaque("port", bytes.fromhex("5977046140766d0000000100000002")),
]


@pytest.mark.parametrize("term", ROUND_TRIPS, ids=lambda t: type(t).__name__)
def test_round_trip(term):
    value = roundtrip(term)
    assert same(value, term), f"{term!r} came back as {value!r}"


def test_binaries_decode_as_str_when_they_are_utf8():
    assert same(roundtrip(bytearray(b"ab")), "ab")
    assert same(roundtrip(b""), "")
    assert same(roundtrip(b"\xc3"), b"\xc3")


def test_subclasses_travel_as_their_base():
    from collections import namedtuple
    point = namedtuple("point", "x y")
    assert same(roundtrip(point(1, 2)), (1, 2))


def test_decode_starts_at_offset_and_reads_a_memoryview():
    data = b"junk" + enc((1, "a")) + enc(Atom("b"))
    first, end = decode(memoryview(data), 4, NODE, CREATION)
    assert first == (1, "a")
    assert dec(data, end) == (Atom("b"), len(data))


def test_local_pid_wire_form():
    assert enc(Pid(None, 7)) == bytes([131, 88, 119, 5]) + b"py@vm" + struct.pack(">III", 7, 0, 3)


def test_local_pid_of_another_creation_is_not_ours():
    data = bytes([131, 88, 119, 5]) + b"py@vm" + struct.pack(">III", 7, 0, 2)
    assert same(dec(data)[0], ErlPid("py@vm", 7, 0, 2))
    zero = bytes([131, 88, 119, 5]) + b"py@vm" + struct.pack(">III", 7, 0, 0)
    assert same(dec(zero)[0], Pid(None, 7))


def test_old_formats_still_decode():
    old_atom = bytes([131, 100, 0, 2]) + b"ok"
    assert same(dec(old_atom)[0], Atom("ok"))
    old_float = bytes([131, 99]) + b"1.50000000000000000000e+00".ljust(31, b"\0")
    assert dec(old_float)[0] == 1.5
    old_pid = bytes([131, 103, 119, 4]) + b"a@vm" + struct.pack(">IIB", 5, 0, 1)
    assert same(dec(old_pid)[0], ErlPid("a@vm", 5, 0, 1))


def test_map_key_python_cannot_hash_becomes_opaque_and_goes_back_unchanged():
    data = bytes([131, 116, 0, 0, 0, 1, 107, 0, 2, 1, 2, 119, 1]) + b"a"
    value, _ = dec(data)
    (key,) = value
    assert isinstance(key, Opaque) and key.kind == "list" and value[key] == Atom("a")
    assert enc(value) == data


def test_values_without_erlang_form_raise_type_error_saying_what_to_send():
    for value, words in [({1, 2}, ("set", "list")), (len, ("builtin", "Atom")),
                         (lambda: 1, ("function", "Atom")), (object(), ("object", "tuples"))]:
        with pytest.raises(TypeError) as err:
            enc([value])
        assert all(w in str(err.value) for w in words), str(err.value)
    with pytest.raises(TypeError, match="256 characters"):
        enc(Atom("x" * 256))
    with pytest.raises(ValueError, match="finite"):
        enc(math.nan)


def test_sending_bounds_nesting_and_receiving_does_not():
    deep = ()
    for _ in range(MAX_DEPTH):
        deep = (deep, 1)
    assert enc(roundtrip(deep)) == enc(deep)      # == itself would recurse too deep
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="contain itself"):
        enc(loop)
    # OTP sends any depth: a term nested a million deep decodes, iteratively
    million = dec(b"\x83" + b"\x68\x01" * 1_000_000 + b"\x6a")[0]
    depth = 0
    while million != []:
        million, depth = million[0], depth + 1
    assert depth == 1_000_000
    # ... and a map key that deep stays bytes (hashing it would recurse in C)
    key = b"\x68\x01" * 5000 + b"\x6a"
    (found,) = dec(b"\x83\x74\x00\x00\x00\x01" + key + b"\x61\x07")[0]
    assert isinstance(found, Opaque) and found.kind == "tuple"


# ---------------------------------------------------------------- against a real Erlang

# Erlang reads lines "let NAME EXPR" (print term_to_binary of EXPR and keep it as NAME),
# "raw _ EXPR" (print the binary EXPR), "check NAME HEX" (is binary_to_term(HEX) =:= NAME?).
ERLANG_LOOP = r"""
Eval = fun(Text) -> {ok, Toks, _} = erl_scan:string(Text ++ "."),
                    {ok, Exprs} = erl_parse:parse_exprs(Toks),
                    {value, V, _} = erl_eval:exprs(Exprs, []), V end,
Hex = fun(Bin) -> binary_to_list(binary:encode_hex(Bin)) end,
Loop = fun Loop(Env) ->
  case io:get_line("") of
    eof -> halt(0);
    Line ->
      [Cmd, Name, Arg] = string:split(string:trim(Line, trailing, "\n"), "\t", all),
      {Reply, Next} = try
        case Cmd of
          "let" -> V = Eval(Arg), {Hex(term_to_binary(V, [{minor_version, 2}])), Env#{Name => V}};
          "raw" -> {Hex(Eval(Arg)), Env};
          "check" -> Term = binary_to_term(binary:decode_hex(list_to_binary(Arg))),
                     {atom_to_list(Term =:= maps:get(Name, Env)), Env}
        end
      catch C:R -> {io_lib:format("error ~p:~p", [C, R]), Env} end,
      io:format("~s~n", [Reply]),
      Loop(Next)
  end
end,
Loop(#{}).
"""


class Erlang:
    """One erl process, asked one line at a time; every answer has a deadline."""

    def __init__(self):
        self.proc = subprocess.Popen(["erl", "-noshell", "-eval", ERLANG_LOOP],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="test-erl-reader").start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def ask(self, cmd: str, name: str, arg: str) -> str:
        self.proc.stdin.write(f"{cmd}\t{name}\t{arg}\n")
        self.proc.stdin.flush()
        try:
            answer = self.lines.get(timeout=20)
        except queue.Empty:
            pytest.fail(f"erl did not answer {cmd} {arg!r} within 20 s")
        assert not answer.startswith("error"), f"erl: {arg!r} failed: {answer}"
        return answer

    def term(self, name: str, expr: str) -> bytes:
        return bytes.fromhex(self.ask("let", name, expr))

    def accepts(self, name: str, data: bytes) -> bool:
        return self.ask("check", name, data.hex()) == "true"

    def stop(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def erl():
    if shutil.which("erl") is None:
        pytest.skip("needs Erlang: apt-get install -y erlang-base elixir")
    erlang = Erlang()
    yield erlang
    erlang.stop()


def local(tag_and_tail: str) -> str:
    """An Erlang expression for a pid or ref of this Python node (py@vm, creation 3)."""
    return f'binary_to_term(<<131, {tag_and_tail}>>)'


# name, Erlang expression, the Python value, and whether the bytes are canonical
# (Python writes exactly what Erlang writes; maps of several keys are ordered by Erlang).
ERLANG_TERMS = [
    ("atom", "add", Atom("add"), True),
    ("quoted atom", "'with space'", Atom("with space"), True),
    ("unicode atom", "'\\x{e9}t\\x{e9}'", Atom("été"), True),
    ("true", "true", True, True),
    ("false", "false", False, True),
    ("nil", "nil", None, True),
    ("small int", "42", 42, True),
    ("int", "-70000", -70000, True),
    ("big", "1 bsl 100", 2**100, True),
    ("negative big", "-(1 bsl 100)", -2**100, True),
    ("large big", "-(1 bsl 3000)", -2**3000, True),
    ("float", "-0.1", -0.1, True),
    ("elixir string", '<<"h\\x{e9}llo w\\x{f6}rld \\x{1F600}"/utf8>>', "héllo wörld 😀", True),
    ("bytes", "<<255, 0, 1>>", b"\xff\x00\x01", True),
    ("charlist", '"abc"', [97, 98, 99], True),
    ("list", '[1, 1000, <<"x">>, [a]]', [1, 1000, "x", [Atom("a")]], True),
    ("empty list", "[]", [], True),
    ("nested tuples", "{add, {1, {2, {3}}}, {}}", (Atom("add"), (1, (2, (3,))), ()), True),
    ("large tuple", "list_to_tuple(lists:seq(1, 300))", tuple(range(1, 301)), True),
    ("map with string keys", '#{<<"name">> => <<"pear">>, <<"qty">> => 3}',
     {"name": "pear", "qty": 3}, False),
    ("empty map", "#{}", {}, True),
    ("nested map", "#{a => #{b => [1.5]}}", {Atom("a"): {Atom("b"): [1.5]}}, True),
    ("local pid", local("88, 119, 5, \"py@vm\", 7:32, 0:32, 3:32"), Pid(None, 7), True),
    ("local ref", local("90, 3:16, 119, 5, \"py@vm\", 3:32, 9:32, 0:32, 0:32"),
     Ref(None, 9), True),
    ("erlang pid", local("88, 119, 4, \"a@vm\", 42:32, 1:32, 7:32"),
     ErlPid("a@vm", 42, 1, 7), True),
    ("erlang ref", local("90, 3:16, 119, 4, \"a@vm\", 7:32, 5:32, 6:32, 1048576:32"),
     ErlRef("a@vm", (5, 6, 1048576), 7), True),
]


@pytest.mark.parametrize("name, expr, expected, canonical", ERLANG_TERMS,
                         ids=[t[0] for t in ERLANG_TERMS])
def test_erlang_terms(erl, name, expr, expected, canonical):
    data = erl.term(name, expr)
    value, end = dec(data)
    assert end == len(data)
    assert same(value, expected), f"Erlang's {expr} decoded as {value!r}, not {expected!r}"
    assert erl.accepts(name, enc(value)), f"Erlang does not read our {value!r} as {expr}"
    if canonical:
        assert enc(value) == data, f"our bytes for {value!r} differ from term_to_binary's"


OPAQUE_TERMS = [
    ("fun", "fun(X) -> X + 1 end", "fun"),
    ("export", "fun erlang:self/0", "export"),
    ("port", "hd(erlang:ports())", "port"),
    ("bitstring", "<<1:3>>", "bitstring"),
    ("improper list", "[1, 2 | 3]", "improper list"),
    ("colliding keys", '#{a => 1, <<"a">> => 2}', "map"),
    ("int and float keys", "#{1 => x, 1.0 => y}", "map"),
]


@pytest.mark.parametrize("name, expr, kind", OPAQUE_TERMS, ids=[t[0] for t in OPAQUE_TERMS])
def test_terms_python_cannot_hold_go_back_verbatim(erl, name, expr, kind):
    data = erl.term(name, expr)
    value, _ = dec(data)
    assert isinstance(value, Opaque) and value.kind == kind, f"{expr} decoded as {value!r}"
    assert enc(value) == data and enc([value, value])[0] == 131
    assert erl.accepts(name, enc(value))


def test_pid_and_ref_of_a_plain_erl(erl):
    pid, _ = dec(erl.term("self", "self()"))
    assert isinstance(pid, Pid) and pid.node == "nonode@nohost" and not pid.is_local()
    assert erl.accepts("self", enc(pid))
    ref, _ = dec(erl.term("ref", "make_ref()"))
    assert isinstance(ref, ErlRef) and ref.node == "nonode@nohost"
    assert erl.accepts("ref", enc(ref))


def test_map_with_a_list_key_reaches_erlang_unchanged(erl):
    value, _ = dec(erl.term("list key", "#{[1, 2] => a, b => 1}"))
    assert value[Atom("b")] == 1 and any(isinstance(k, Opaque) for k in value)
    assert erl.accepts("list key", enc(value))


def test_compressed_terms(erl):
    data = bytes.fromhex(erl.ask("raw", "_", 'term_to_binary(lists:duplicate(1000, <<"abc">>), '
                                              "[compressed])"))
    assert data[1] == 80
    assert dec(data + b"next") == (["abc"] * 1000, len(data))


# ---------------------------------------------------------------- hostile bytes

_INNER = enc(["abc"] * 300)[1:]          # a compressed term is the term without 131
VALID = [enc(t) for t in ROUND_TRIPS if t != list(range(70000))] + [
    b"\x83\x50" + struct.pack(">I", len(_INNER)) + zlib.compress(_INNER),
    bytes.fromhex("8370000000B101065361AA461590D1BDF1EB62D1A6EB080000002A00000001770865726C5F"
                  "6576616C612A6200329B0D58770D6E6F6E6F6465406E6F686F7374000000090000000000000"
                  "000680661016A77046E6F6E6577046E6F6E6574000000006C0000000168057706636C617573"
                  "6561016C000000016803770376617261017701586A6A6C00000001680577026F7061017701"
                  "2B68037703766172610177015868037707696E7465676572610161016A6A"),   # a fun
    bytes([131, 113, 119, 6]) + b"erlang" + bytes([119, 4]) + b"self" + bytes([97, 0]),
    bytes([131, 77, 0, 0, 0, 1, 3, 32]), bytes([131, 108, 0, 0, 0, 1, 97, 1, 97, 2]),
]


def test_valid_samples_decode():
    for data in VALID:
        assert dec(data)[1] == len(data)


def test_truncated_at_every_offset_is_bad_term():
    for data in VALID:
        for cut in range(len(data)):
            with pytest.raises(BadTerm):
                dec(data[:cut])


HUGE_CLAIMS = {
    "binary": b"\x83\x6d\xff\xff\xff\xff",
    "list": b"\x83\x6c\xff\xff\xff\xff\x61\x01",
    "tuple": b"\x83\x69\xff\xff\xff\xff\x61\x01",
    "map": b"\x83\x74\xff\xff\xff\xff\x61\x01",
    "big": b"\x83\x6f\xff\xff\xff\xff\x00\x01",
    "charlist": b"\x83\x6b\xff\xff\x01",
    "atom": b"\x83\x76\xff\xffab",
    "fun": b"\x83\x70\xff\xff\xff\xff" + bytes(40),
    "bitstring": b"\x83\x4d\xff\xff\xff\xff\x08",
    "compressed": b"\x83\x50\xff\xff\xff\xff" + zlib.compress(b"\x6a"),
    "ref words": b"\x83\x5a\xff\xff\x77\x01a" + bytes(16),
    "inflates to 64 MiB": b"\x83\x50\x04\x00\x00\x00" + zlib.compress(b"\x6a"),
}


@pytest.mark.parametrize("data", HUGE_CLAIMS.values(), ids=HUGE_CLAIMS.keys())
def test_huge_claimed_lengths_fail_fast_without_allocating(data):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(BadTerm):
            dec(data)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 0.05, f"took {elapsed * 1000:.0f} ms"
    assert peak < 1 << 20, f"allocated {peak} bytes for a claim"


def test_zlib_bomb_stops_at_the_declared_size():
    bomb = zlib.compress(b"\x6d" + struct.pack(">I", 10 << 20) + bytes(10 << 20))
    with pytest.raises(BadTerm, match="does not inflate"):
        dec(b"\x83\x50" + struct.pack(">I", 1000) + bomb)


def test_refused_tags():
    with pytest.raises(BadTerm, match="ATOM_CACHE_REF"):
        dec(b"\x83\x52\x00")
    with pytest.raises(BadTerm, match="version"):
        dec(b"\x84\x6a")
    with pytest.raises(BadTerm, match="unknown tag"):
        dec(b"\x83\x01")
    with pytest.raises(BadTerm, match="not finite"):
        dec(b"\x83\x46" + struct.pack(">d", math.inf))
    with pytest.raises(BadTerm, match="over Erlang's 255"):
        dec(b"\x83\x76\x01\x00" + b"x" * 256)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        where = rng.randrange(1, len(b)) if len(b) > 1 else 1
        choice = rng.random()
        if choice < 0.5 and len(b) > 1:
            b[where] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif choice < 0.75:
            b[where:where] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 5)))
        elif len(b) > 2:
            del b[where:where + rng.randint(1, 5)]
    return bytes(b)


def test_fuzz_raises_only_bad_term_and_what_decodes_reencodes():
    rng = random.Random(20240531)
    tags = [70, 77, 80, 82, 88, 89, 90, 97, 98, 99, *range(100, 121)]
    cases = [_mutate(rng, rng.choice(VALID)) for _ in range(4000)]
    cases += [bytes([131, rng.choice(tags)]) + rng.randbytes(rng.randint(0, 40))
              for _ in range(3000)]
    decoded = 0
    for data in cases:
        try:
            value, _ = dec(data)
        except BadTerm:
            continue
        decoded += 1
        again = dec(enc(value))[0]
        assert same(again, value), f"{data.hex()} decoded as {value!r}, then as {again!r}"
    assert decoded > 100, "the fuzz should also reach valid terms"


def test_a_message_of_millions_of_terms_decodes_and_claims_beyond_its_bytes_do_not():
    """No term budget (OTP has none): the bytes bound it, one byte a term at least."""
    n = 2_000_000
    data = bytes([131, 108]) + n.to_bytes(4, "big") + bytes([97, 7]) * n + bytes([106])
    value = decode(data, 0, NODE, CREATION)[0]
    assert len(value) == n and value[-1] == 7
    claimed = bytes([131, 108]) + (2**32 - 1).to_bytes(4, "big") + bytes([106]) * 100
    started = time.perf_counter()
    with pytest.raises(BadTerm, match="claims 4294967296 terms"):
        decode(claimed, 0, NODE, CREATION)
    assert time.perf_counter() - started < 0.1
