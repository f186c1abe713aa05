"""peer: start another node in a new OS process (Erlang's ``:peer``).

    server = peer.start("server")       # like `iex --sname server` in a second terminal
    server.node                         # 'server@vm'
    server.stop()                       # or: with peer.start("server") as server: ...

The peer has this node's cookie, host and kind of name, working directory and
import path (so it can import what this process can), and is connected before
``start`` returns. What it prints appears here, labelled ``[server@vm]``.

A peer never outlives its starter: it holds the reading end of a pipe whose
writing end only the starter has. When the starter ends, even by ``kill -9``, the
kernel closes that pipe and the peer exits.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time

from . import _epmd, _global, _names
from . import _transport as wire
from ._console import STDERR, STDOUT, console
from ._errors import PydistError
from ._process import _table

__all__ = ["start", "Peer"]

READY = "PYDIST-PEER-READY"
# What a peer prints goes to its starter over their connection, with its stream and time.
# Cut off from its starter (a partition), or about to be, it writes them to its pipe
# instead, which has one stream: each line then opens with this mark, its stream, time
# and node's name.
LINE_MARK = "\x1e"
START_TIMEOUT = 15.0           # generous: a cold start on a loaded CI machine
STOP_TIMEOUT = 3.0


class Peer:
    """A node running in a child OS process. ``.node`` is its name."""

    def __init__(self, node: str, process: subprocess.Popen, watch_fd: int,
                 beam: bool = False):
        self.node, self.process, self._watch_fd, self.beam = node, process, watch_fd, beam
        self.os_pid = process.pid

    def __repr__(self) -> str:
        state = "running" if self.process.poll() is None else "stopped"
        return f"<peer {self.node} ({state})>"

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the peer node and its OS process (idempotent)."""
        dist, asked = _table.dist, False
        if dist is not None and self in dist.children:    # started and connected
            dist.children.remove(self)
            peer = dist.peers.get(self.node)
            if peer is not None and not self.beam:        # it stops its node and exits
                peer.channel.send(wire.encode_parts((wire.STOP,)))
                asked = True
        else:
            dist = None
        if not asked and self._watch_fd >= 0:   # an Elixir peer, or one cut off from us
            os.close(self._watch_fd)            # (a partition): its lifeline ends, so does it
            self._watch_fd = -1
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
        if self._watch_fd >= 0:
            os.close(self._watch_fd)
            self._watch_fd = -1
        if dist is not None:             # let our side see the connection go
            with dist.changed:
                dist.changed.wait_for(lambda: self.node not in dist.peers, timeout=1.0)

    def __enter__(self) -> "Peer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(name: str, *, elixir: bool = False, load: str | list[str] = (),
          timeout: float = START_TIMEOUT) -> Peer:
    """Start node ``name`` in a new OS process, connected to this one; returns a ``Peer``.

    Elixir: opening a second terminal with ``iex --sname server``. This process must
    be a node already (``Node.start``). Starting a name this node has started before
    (a notebook run again from the top) stops the old peer first: you get a fresh one.
    The peer has a process group of its own, so the stop button (Ctrl-C) interrupts
    the cell that waits, never the peers.

    ``elixir=True`` starts a real Elixir node instead (``elixir --sname server``, with
    this node's cookie), which first compiles the files in ``load`` (e.g. the
    article's ``product_stock.ex``); see ``_beam``.
    """
    dist = _table.dist_required("peer.start")
    if not isinstance(name, str):
        raise TypeError(f"peer.start takes a name like 'server', not {name!r}")
    me = dist.node
    target = _names.parse(name if "@" in name else f"{name}@{me.host}", long=me.long)
    if target.host != me.host:
        raise ValueError(f"peer.start({name!r}): a peer runs on this host, {me.host}; "
                         f"give just the name, e.g. peer.start({target.name!r})")
    for old in [child for child in dist.children if child.node == target.full]:
        old.stop()                               # run again: a fresh peer, as the cell says
    if elixir:
        return _start_elixir(dist, target, [load] if isinstance(load, str) else list(load),
                             timeout)
    read_end, write_end = os.pipe()              # the peer's lifeline
    env = dict(os.environ, PYDIST_COOKIE=dist.cookie.decode(),
               PYTHONPATH=os.pathsep.join(os.path.abspath(p or ".") for p in sys.path),
               PYTHONUNBUFFERED="1", PYDIST_HEARTBEAT=str(dist.heartbeat))
    if dist.tls_folder:
        env["PYDIST_TLS"] = dist.tls_folder
    process = subprocess.Popen(
        [sys.executable, "-m", "pydist", "_peer", target.full, dist.name, str(read_end)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        pass_fds=(read_end,), env=env, cwd=os.getcwd(), start_new_session=True)
    os.close(read_end)
    return _started(Peer(target.full, process, write_end), dist, timeout)


def _started(handle: Peer, dist, timeout: float) -> Peer:
    try:
        _wait_ready(handle, dist, timeout)
    except BaseException:                       # failed, or the stop button: no half peer
        handle.stop(0.5)
        raise
    dist.children.append(handle)
    console.dirty = True
    return handle


# An Elixir peer's lifeline is its stdin: it halts when that ends (its starter gone).
ELIXIR_MAIN = """
Node.set_cookie(String.to_atom(System.fetch_env!("PYDIST_ELIXIR_COOKIE")))
spawn(fn ->
  loop = fn loop -> if IO.read(:stdio, :line) in [:eof, {:error, :terminated}],
                    do: System.halt(0), else: loop.(loop) end
  loop.(loop)
end)
true = Node.connect(:"%(parent)s")
IO.puts("%(ready)s")
Process.sleep(:infinity)
"""


def _start_elixir(dist, target, files: list[str], timeout: float) -> Peer:
    """``elixir --sname NAME -r FILE... -e MAIN`` (see ELIXIR_MAIN), with our cookie."""
    if shutil.which("elixir") is None:
        raise PydistError("Elixir is not installed here: apt-get install elixir (Debian, "
                          "Ubuntu), brew install elixir (macOS), or see "
                          "https://elixir-lang.org/install.html")
    for path in files:
        if not os.path.exists(path):
            raise FileNotFoundError(f"peer.start(..., load={path!r}): no such file here "
                                    f"({os.getcwd()})")
    kind = "--name" if target.long else "--sname"
    command = ["elixir", kind, target.full,           # the cookie: in its environment,
               "--erl", f"-kernel inet_dist_use_interface {_erl_ip(target.address())} "
               "-start_epmd false"]          # our mapper runs: never leave an epmd behind
    for path in files:
        command += ["-r", path]
    command += ["-e", ELIXIR_MAIN % {"parent": dist.name, "ready": READY}]
    read_end, write_end = os.pipe()
    env = dict(os.environ, ERL_EPMD_PORT=str(_epmd.epmd_port()),   # not on its command
               PYDIST_ELIXIR_COOKIE=dist.cookie.decode())         # line, which ps shows
    process = subprocess.Popen(command, stdin=read_end, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env, cwd=os.getcwd(),
                               start_new_session=True)
    os.close(read_end)
    return _started(Peer(target.full, process, write_end, beam=True), dist, timeout)


def _erl_ip(address: str) -> str:
    """``127.0.0.1`` as Erlang's tuple ``{127,0,0,1}``."""
    return "{" + address.replace(".", ",") + "}"


def _wait_ready(handle: Peer, dist, timeout: float) -> None:
    process, node = handle.process, handle.node
    lines: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=_pump, args=(process, node, lines), daemon=True,
                     name=f"pydist-output-{node}").start()
    seen, deadline = [], time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if isinstance(line, str) and line.strip() == READY:
            break
        if line is None or line is _EOF:
            why = "exited" if process.poll() is not None else f"did not answer in {timeout} s"
            raise PydistError(f"peer {node} {why}; it printed:\n"
                              + ("".join(seen) or "(nothing)\n"))
        seen.append(line)
    if not _wait_connected(dist, node):
        raise PydistError(f"peer {node} started but is not connected to {dist.name}")


_EOF = object()


def _marked(line: str, node: str) -> tuple[int, str, str, float | None]:
    """(stream, text, label, stamp) of a line from ``node``'s pipe (see LINE_MARK)."""
    if line.startswith(LINE_MARK):
        try:
            stream, stamp, label, text = line[len(LINE_MARK):].split(" ", 3)
            return (STDERR if stream == str(STDERR) else STDOUT), text, label, float(stamp)
        except ValueError:
            pass
    return STDOUT, line, node, None


def _wait_connected(dist, node: str) -> bool:
    with dist.changed:
        return dist.changed.wait_for(lambda: node in dist.peers, timeout=2.0)


def _pump(process: subprocess.Popen, node: str, lines: queue.SimpleQueue) -> None:
    """Whatever the peer writes to its real stdout/stderr (before its node is up,
    or from C code): given to ``start`` until READY, then printed here, labelled."""
    ready = False
    for raw in iter(process.stdout.readline, b""):
        line = raw.decode(errors="replace")
        if ready:
            console.emit(*_marked(line, node))
        else:
            lines.put(line)
            ready = line.strip() == READY
    process.stdout.close()
    if not ready:
        lines.put(_EOF)


# ---------------------------------------------------------------- in the peer

def _child_main(node: str, parent: str, watch_fd: int) -> None:
    def lifeline() -> None:
        while os.read(watch_fd, 1):
            pass
        os._exit(0)                  # the starter is gone: so are we
    threading.Thread(target=lifeline, daemon=True, name="pydist-lifeline").start()
    from ._node import Node
    try:
        Node.start(node, long=_names.parse(node).long)
    except (PydistError, ValueError, OSError) as exc:
        print(f"peer {node} could not start: {exc}", flush=True)
        os._exit(1)
    dist = _table.dist
    if not Node.connect(parent):
        print(f"peer {node} could not connect to {parent}", flush=True)
        os._exit(1)

    def forward(stream: int, text: str, label: str | None, stamp: float | None) -> bool:
        when, label = time.monotonic() if stamp is None else stamp, label or node
        peer = dist.peers.get(parent)
        if peer is not None and not _global.parting(dist, parent):
            peer.channel.send(wire.encode_parts((wire.IO, None, stream, label, text, when)))
            return True
        mark = f"{LINE_MARK}{stream} {when!r} {label} "    # cut off from our starter
        body = text[:-1] if text.endswith("\n") else text     # its lines, \r and all
        try:
            os.write(1, "".join(f"{mark}{line}\n" for line in body.split("\n")).encode())
        except OSError:                      # the starter is gone, and its pipe
            pass
        return True
    console.forward = forward
    os.write(1, f"{READY}\n".encode())
    threading.Event().wait()
