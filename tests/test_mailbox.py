"""A process's mailbox and wake-ups (pydist/_mailbox.py)."""

import gc
import os
import threading

from pydist._mailbox import MAX_PAIRS, Proc


def _open_descriptors() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


def test_only_so_many_processes_hold_a_wake_up_socket_pair():
    gc.collect()
    before, fds = Proc.pairs, _open_descriptors()
    procs = [Proc(None, None, spawned=True) for _ in range(MAX_PAIRS + 20)]
    allowed = [p.can_poll() for p in procs]
    assert sum(allowed) == MAX_PAIRS - before, \
        f"{sum(allowed)} processes got a socket pair; at most {MAX_PAIRS} may hold one"
    assert _open_descriptors() - fds == 2 * (MAX_PAIRS - before)
    del procs, allowed
    gc.collect()
    assert Proc.pairs == before and _open_descriptors() == fds, \
        "the socket pairs of processes that are gone were not closed"


def test_a_message_wakes_a_process_sleeping_in_poll():
    import socket
    proc = Proc(None, None, spawned=True)
    assert proc.can_poll()
    quiet, other = socket.socketpair()        # a connection nothing arrives on
    try:
        threading.Timer(0.1, proc.deliver, ["hello"]).start()
        assert proc.poll(quiet.fileno(), 5.0) is False, "woken, not readable"
        assert list(proc.mailbox) == ["hello"]
        other.send(b"x")
        assert proc.poll(quiet.fileno(), 5.0) is True
        assert proc.poll(quiet.fileno(), 0.05) is True      # still unread: still readable
    finally:
        quiet.close()
        other.close()
