"""The fast path of the term format (pydist/_etf_fast.py) against the careful one.

The fast path must write the same bytes and read the same terms as ``_etf`` and
``_etf_decode``, and refuse exactly what they refuse: checked here on random terms,
on every truncation of them and on random byte changes.
"""

import random

import pytest

from pydist import _etf, _etf_decode, _etf_fast
from pydist._etf import Atom, BadTerm, ErlPid, ErlRef
from pydist._pids import Pid, Ref

ME = "py@host"


def _remote_pid(node, num):
    pid = Pid.__new__(Pid)
    pid._node, pid.num = node, num
    return pid


def _scalar(rng: random.Random):
    kind = rng.randrange(14)
    return [
        lambda: Atom(rng.choice(["ok", "add", "", "héllo", "a" * 255, "nil_x"])),
        lambda: rng.randrange(256),
        lambda: rng.randrange(-2**31, 2**31),
        lambda: rng.choice([2**31, -2**31 - 1, 2**64, -(2**200)]),
        lambda: rng.choice([0.0, -1.5, 1e300, 3.14]),
        lambda: rng.choice(["", "nike", "ünïcode ✓", "x" * 300]),
        lambda: rng.choice([b"", b"\xff\xfe", bytes(range(256))]),
        lambda: rng.choice([True, False, None]),
        lambda: Pid(None, rng.randrange(100, 10**6)),
        lambda: _remote_pid("other@host", rng.randrange(100, 1000)),
        lambda: ErlPid("ex@host", rng.randrange(1000), rng.randrange(3), rng.randrange(1, 9)),
        lambda: Ref(None, rng.randrange(1, 10**6)),
        lambda: ErlRef("ex@host", (1, 2, 3), 7),
        lambda: [rng.randrange(256) for _ in range(rng.randrange(4))],     # a charlist
    ][kind]()


def _term(rng: random.Random, depth: int):
    if depth == 0 or rng.random() < 0.4:
        return _scalar(rng)
    n = rng.randrange(5)
    kind = rng.randrange(4)
    if kind == 0:
        return tuple(_term(rng, depth - 1) for _ in range(n))
    if kind == 1:
        return [_term(rng, depth - 1) for _ in range(n)]
    if kind == 2:
        return {_key(rng): _term(rng, depth - 1) for _ in range(n)}
    return (Atom("tag"), _term(rng, depth - 1))


def _key(rng: random.Random):
    key = _scalar(rng)
    return key if not isinstance(key, list) else tuple(key)


def _same(a, b) -> bool:
    """Equal, and of the same types all the way down (1 == True, 'a' == Atom('a'))."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            any(_same(k, k2) for k2 in b) and _same(v, b[k]) for k, v in a.items())
    return a == b


def _both(data: bytes, offset: int = 0):
    """(what the careful decoder gives, what the fast one gives): a value or BadTerm."""
    out = []
    for decode in (_etf_decode.decode, _etf_fast.decode):
        try:
            out.append(decode(data, offset, ME, 5))
        except BadTerm as exc:
            out.append(("BadTerm", str(exc)))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_the_fast_path_writes_and_reads_what_the_careful_one_does(seed):
    rng = random.Random(seed)
    for _ in range(300):
        term = _term(rng, 5)
        careful = _etf.encode(term, ME, 5)
        fast = _etf_fast.encode(term, ME, 5)
        assert fast == careful, f"encode({term!r}): fast wrote {fast!r}, expected {careful!r}"
        slow, quick = _both(careful)
        assert _same(quick[0], slow[0]) and quick[1] == slow[1], \
            f"decode of {term!r}: fast read {quick!r}, expected {slow!r}"


def test_deep_and_cyclic_terms_get_the_careful_answer():
    deep = ()
    for _ in range(200):                     # past the fast path's depth
        deep = (deep,)
    assert _etf_fast.encode(deep, ME, 5) == _etf.encode(deep, ME, 5)
    slow, quick = _both(_etf.encode(deep, ME, 5))
    assert quick == slow
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nested deeper"):
        _etf_fast.encode(loop, ME, 5)
    with pytest.raises(TypeError, match="no Erlang form"):
        _etf_fast.encode({1, 2}, ME, 5)


@pytest.mark.parametrize("seed", range(4))
def test_cut_or_changed_bytes_are_refused_alike(seed):
    rng = random.Random(100 + seed)
    for _ in range(60):
        data = _etf.encode(_term(rng, 4), ME, 5)
        for cut in range(1, len(data)):                  # every truncation
            slow, quick = _both(data[:cut])
            assert repr(quick) == repr(slow), f"{data[:cut]!r}: {quick!r} vs {slow!r}"
        for _ in range(30):                              # random byte changes
            changed = bytearray(data)
            changed[rng.randrange(1, len(data))] = rng.randrange(256)
            slow, quick = _both(bytes(changed))
            if isinstance(slow[0], str) and slow[0] == "BadTerm":
                assert quick == slow
            else:
                assert _same(quick[0], slow[0]) and quick[1] == slow[1], \
                    f"{bytes(changed)!r}: fast read {quick!r}, expected {slow!r}"


def test_a_bare_term_and_an_offset_read_as_the_careful_decoder_reads_them():
    term = (Atom("add"), {"name": "nike", "qty": 30}, Pid(None, 120))
    data = b"junk" + _etf.encode(term, ME, 5)[1:] + b"after"
    value, end = _etf_fast.decode_bare(data, 4, ME, 5)
    assert _same(value, term) and data[end:] == b"after"
    big = b"junk" + _etf.encode(list(range(5000)), ME, 5)[1:]     # past SMALL: careful
    assert _etf_fast.decode_bare(big, 4, ME, 5) == (list(range(5000)), len(big))
    with pytest.raises(BadTerm, match="claims 3 bytes"):
        _etf_fast.decode_bare(data[:10], 4, ME, 5)
