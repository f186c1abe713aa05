"""The port mapper: Erlang's ``epmd``, one per host address.

A node listens on a port chosen by the kernel; other nodes find it by asking the
mapper of the node's host, which listens on a well-known port. The first node on a
host starts the mapper as a detached daemon (as Erlang starts ``epmd``). The daemon
exits by itself ``IDLE_EXIT`` seconds after its last node has gone, so nothing is
left running on a learner's machine or in CI. ``python -m pydist epmd`` runs one in
the foreground (it then stays until Ctrl-C); ``python -m pydist names`` lists names.

The protocol is plain text, one request line per connection, so that nothing a
stranger sends is ever deserialized:

    REG <name> <port>   ->  OK | TAKEN       the connection stays open: the name lives
                                             as long as it does (a crashed node's name
                                             frees itself when the kernel closes it)
    PORT <name>         ->  PORT <port> | NONE
    NAMES               ->  NAME <name> <port> ... END
    anything else       ->  ERR <why>, the connection is closed, one line is logged
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

from ._errors import PydistError

__all__ = ["epmd_port", "serve", "ensure_registered", "register", "lookup", "names"]

DEFAULT_PORT = 4370           # beside Erlang's 4369, so both can run on one machine
IDLE_EXIT = 3.0               # seconds an auto-started mapper waits with no node left
MAX_LINE = 256                # a request longer than this is garbage
REQUEST_TIMEOUT = 2.0         # seconds a client has to send its request line
START_TIMEOUT = 5.0           # seconds a node waits for a mapper it started


def epmd_port() -> int:
    """The mapper's port: ``PYDIST_EPMD_PORT`` or 4370."""
    value = os.environ.get("PYDIST_EPMD_PORT", "")
    try:
        return int(value) if value else DEFAULT_PORT
    except ValueError:
        raise ValueError(f"PYDIST_EPMD_PORT must be a port number, not {value!r}") from None


def _log(text: str) -> None:
    print(f"pydist epmd: {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the server

class _Mapper:
    def __init__(self, sock: socket.socket, idle_exit: float | None):
        self.sock = sock
        self.idle_exit = idle_exit
        self.lock = threading.Lock()
        self.ports: dict[str, int] = {}
        self.last_seen = time.monotonic()
        self.closing = False
        self.own = {"127.0.0.1", "::1", sock.getsockname()[0]}   # who may register

    def serve_forever(self) -> None:
        self._arm()                       # a mapper nobody registers with ends too
        while not self.closing:
            try:
                conn, peer = self.sock.accept()
            except OSError as exc:        # shut down by _exit_if_idle, or out of descriptors
                if not self.closing:
                    _log(f"cannot accept a connection ({exc.strerror}); retrying shortly")
                    time.sleep(0.1)       # never spin, never exit while nodes are registered
                continue
            threading.Thread(target=self._handle, args=(conn, peer), daemon=True,
                             name="pydist-epmd-conn").start()
        self.sock.close()

    # No timer loop: the mapper sleeps in accept. When its last node goes, a one-shot
    # timer checks IDLE_EXIT seconds later whether it is still alone, and if so
    # shuts the listening socket, which ends accept.
    def _arm(self) -> None:
        if self.idle_exit is not None:
            timer = threading.Timer(self.idle_exit, self._exit_if_idle)
            timer.daemon = True
            timer.start()

    def _exit_if_idle(self) -> None:
        with self.lock:
            if self.ports or time.monotonic() - self.last_seen < self.idle_exit * 0.99:
                return                    # a node came (or left again: its own timer runs)
            self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _handle(self, conn: socket.socket, peer) -> None:
        with conn:
            try:
                line = _read_line(conn, time.monotonic() + REQUEST_TIMEOUT)
                words = line.split()
                if words[:1] == ["REG"] and len(words) == 3 and _port(words[2]):
                    if not (peer[0] in self.own or peer[0].startswith("127.")):
                        raise ValueError("registrations come from this host only, as epmd's")
                    self._register(conn, words[1], int(words[2]))
                elif words[:1] == ["PORT"] and len(words) == 2:
                    with self.lock:
                        port = self.ports.get(words[1])
                    conn.sendall(b"NONE\n" if port is None else b"PORT %d\n" % port)
                elif words == ["NAMES"]:
                    with self.lock:
                        rows = sorted(self.ports.items())
                    conn.sendall(b"".join(b"NAME %s %d\n" % (n.encode(), p)
                                          for n, p in rows) + b"END\n")
                else:
                    raise ValueError(f"unknown request {line[:40]!r}")
            except (ValueError, OSError) as exc:
                _log(f"refused a connection from {peer[0]}:{peer[1]}: {exc}")
                try:
                    conn.sendall(b"ERR %s\n" % str(exc).encode()[:200])
                except OSError:
                    pass

    def _register(self, conn: socket.socket, name: str, port: int) -> None:
        with self.lock:
            if name in self.ports:
                conn.sendall(b"TAKEN\n")
                return
            self.ports[name] = port
        if self.closing:                 # about to exit: the node will start a new one
            return
        try:
            conn.sendall(b"OK\n")
            conn.settimeout(None)
            while conn.recv(64):         # the node never sends more: wait for its end
                pass
        except OSError:
            pass
        finally:
            with self.lock:
                self.ports.pop(name, None)
                self.last_seen = time.monotonic()
                alone = not self.ports
            if alone:
                self._arm()


def _port(text: str) -> bool:
    return text.isdigit() and 0 < int(text) < 65536


def _read_line(conn: socket.socket, deadline: float) -> str:
    """One request line, all of it before ``deadline`` (a client dripping one byte at
    a time is cut off as surely as a silent one)."""
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise ValueError("too slow to send its request")
        conn.settimeout(left)
        try:
            chunk = conn.recv(MAX_LINE + 1 - len(data))
        except socket.timeout:
            raise ValueError("too slow to send its request") from None
        if not chunk:
            raise ValueError("connection closed before a full request line")
        data += chunk
        if len(data) > MAX_LINE:
            raise ValueError("request line too long")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ValueError("request is not ASCII text") from None


def serve(address: str = "127.0.0.1", port: int | None = None,
          idle_exit: float | None = None, listening=None) -> None:
    """Run a mapper in this process until it is idle for ``idle_exit`` s (or forever);
    ``listening()`` is called once it accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, epmd_port() if port is None else port))
    sock.listen(64)
    if listening is not None:
        listening()
    _Mapper(sock, idle_exit).serve_forever()


def _more_descriptors() -> None:
    """Each registration holds a descriptor: raise the soft limit to the hard one."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def _daemon_main(address: str, port: int, idle_exit: float) -> None:
    """Detach (double fork), then serve; the starter only waits for the first child."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    _more_descriptors()
    try:
        serve(address, port, idle_exit)
    except OSError:
        pass                             # another node started one first: fine
    os._exit(0)


# ---------------------------------------------------------------- the client

class _NoAnswer(PydistError):
    pass


def _request(address: str, line: str, timeout: float) -> socket.socket:
    sock = socket.create_connection((address, epmd_port()), timeout=timeout)
    sock.sendall(line.encode() + b"\n")
    return sock


MAX_REPLY = 1 << 20          # a names list longer than this is not from a mapper


def _reply_lines(sock: socket.socket, timeout: float) -> list[str]:
    """The whole reply, within ``timeout`` in all; OSError/ValueError if it is not one."""
    data, deadline = b"", time.monotonic() + timeout
    with sock:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise OSError("the port mapper's answer took too long")
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_REPLY:
                raise ValueError("not a port mapper's answer (too long)")
    return data.decode("ascii").splitlines()


def ensure_running(address: str, timeout: float = START_TIMEOUT) -> None:
    """Start a daemon mapper on ``address`` unless one already answers there."""
    try:
        socket.create_connection((address, epmd_port()), timeout=1.0).close()
        return
    except OSError:
        pass
    idle = os.environ.get("PYDIST_EPMD_IDLE", str(IDLE_EXIT))
    starter = subprocess.Popen(
        [sys.executable, "-m", "pydist", "epmd", "--daemon", "--address", address,
         "--port", str(epmd_port()), "--idle", idle],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    starter.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, epmd_port()), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.005)
    raise PydistError(f"the port mapper did not start on {address}:{epmd_port()}; "
                      f"is the port used by another program? Set PYDIST_EPMD_PORT.")


def register(address: str, name: str, port: int, timeout: float = 2.0) -> socket.socket:
    """Register ``name``; the returned socket *is* the registration: close it to free."""
    try:
        sock = _request(address, f"REG {name} {port}", timeout)
        reply = sock.recv(MAX_LINE).decode(errors="replace").strip()
    except OSError as exc:
        raise _NoAnswer(f"the port mapper at {address}:{epmd_port()} did not answer ({exc}); "
                          f"is that port used by another program? Set PYDIST_EPMD_PORT.") from None
    if reply == "OK":
        sock.settimeout(None)
        return sock
    sock.close()
    if not reply:                        # a mapper on its way out: start another
        raise _NoAnswer(f"the port mapper at {address}:{epmd_port()} closed without answering")
    if reply == "TAKEN":
        raise PydistError(f"the name {name!r} is already taken on this host: stop that node "
                          f"(another notebook's? Kernel → Shut Down Kernel there) or pick "
                          f"another name; `python -m pydist names` lists the running nodes")
    raise PydistError(f"the port mapper refused to register {name!r}: {reply or 'no answer'}")


def ensure_registered(address: str, name: str, port: int) -> socket.socket:
    """Start the mapper if needed and register; retried, because a mapper that has
    just decided to exit (idle) may still accept a connection and then drop it."""
    for attempt in range(3):
        ensure_running(address)
        try:
            return register(address, name, port)
        except _NoAnswer:
            if attempt == 2:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


def lookup(address: str, name: str, timeout: float = 2.0) -> int | None:
    """The port of ``name`` on that host, or ``None``; ``OSError`` if no mapper runs."""
    lines = _reply_lines(_request(address, f"PORT {name}", timeout), timeout)
    words = lines[0].split() if lines else []
    if len(words) == 2 and words[0] == "PORT" and _port(words[1]):
        return int(words[1])
    return None                           # NONE, or an answer that is no port at all


def names(address: str = "127.0.0.1", timeout: float = 2.0) -> list[tuple[str, int]]:
    """``[(name, port), ...]`` registered on that host, like ``epmd -names``."""
    rows = []
    for line in _reply_lines(_request(address, "NAMES", timeout), timeout):
        words = line.split()
        if words[:1] == ["NAME"] and len(words) == 3 and _port(words[2]):
            rows.append((words[1], int(words[2])))
    return rows
