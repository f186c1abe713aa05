"""Checks for exercise 07 · The missing file."""
import os
import tempfile
from pathlib import Path

from pydist import self, spawn
from pydist._exercises import ask, expect, unique

NODE = True
DATA = bytes(range(256)) * 1000          # 256,000 bytes: four chunks of 64 KiB


def task1(ex):
    expect(ex.chunks(b"abcde", 2), [b"ab", b"cd", b"e"], "chunks(b'abcde', 2)")
    expect(ex.chunks(b"", 2), [], "chunks(b'', 2)")
    expect(b"".join(ex.chunks(DATA)), DATA, "chunks(DATA) then joined them back")


def task2(ex):
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "report.csv").write_bytes(DATA)
        pid = spawn(ex.file_server, folder)
        expect(ask(pid, ("get", self(), "nope.txt"), called="('get', me, 'nope.txt')"),
               ("missing", "nope.txt"), "file_server then ('get', me, 'nope.txt')")
        from pydist import receive
        expect(ask(pid, ("get", self(), "report.csv"), called="('get', me, 'report.csv')"),
               ("size", len(DATA)), "file_server then ('get', me, 'report.csv')")
        got = b""
        while (msg := receive(timeout=2))[0] == "chunk":
            if len(msg[1]) > 65536:
                raise AssertionError(f"file_server sent a chunk of {len(msg[1])} bytes, expected "
                                     f"chunks of at most 65536 (64 KiB): cut the file with "
                                     f"chunks(data), one ('chunk', piece) message each")
            got += msg[1]
        expect(msg, ("eof",), "file_server: the message after the last chunk")
        expect(len(got), len(DATA), "file_server: the bytes of all chunks")


def _server(folder):
    from pathlib import Path

    from pydist import receive, send
    while True:
        _, sender, name = receive()
        path = Path(folder) / name
        if not path.exists():
            send(sender, ("missing", name))
            continue
        data = path.read_bytes()
        send(sender, ("size", len(data)))
        for i in range(0, len(data), 65536):
            send(sender, ("chunk", data[i:i + 65536]))
        send(sender, ("eof",))


def task3(ex):
    from pydist import Node, peer, rpc
    with tempfile.TemporaryDirectory() as folder, peer.start(unique("owner")) as owner:
        Path(folder, "report.csv").write_bytes(DATA)
        rpc.call(owner.node, _start, ["files", _server, folder])
        dest = os.path.join(folder, "copy.csv")
        expect(ex.fetch(owner.node, "report.csv", dest), len(DATA),
               f"fetch({owner.node!r}, 'report.csv', dest)")
        expect(Path(dest).read_bytes() == DATA, True, "fetch, then compared the copy")
        try:
            ex.fetch(owner.node, "nope.txt", dest, timeout=2)
        except FileNotFoundError:
            return
        raise AssertionError("called fetch(owner, 'nope.txt', ...), expected FileNotFoundError")
    assert Node.alive()


def _start(name, fun, *args):
    from pydist import Process, spawn
    Process.register(spawn(fun, *args), name)


TASKS = [("chunks cuts bytes into pieces", task1),
         ("file_server answers missing, size, chunks, eof", task2),
         ("fetch copies a file from another node", task3)]
