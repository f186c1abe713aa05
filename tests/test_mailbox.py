"""A process's mailbox (pydist/_mailbox.py): order, selective receive, and its cost."""

import threading
import time

from pydist import Process, receive, self, send, spawn
from pydist._mailbox import NOTHING, Proc


def _proc_with(*msgs) -> Proc:
    proc = Proc(None, None, spawned=False)
    proc.deliver_many(list(msgs))
    return proc


def test_take_without_a_pattern_gives_the_oldest_first():
    proc = _proc_with(1, 2, 3)
    assert [proc.take(None, 0)[0] for _ in range(3)] == [1, 2, 3]
    assert proc.take(None, 0)[0] is NOTHING


def test_a_skipped_message_stays_in_its_place_for_the_next_receive():
    proc = _proc_with("a", ("b", 1), "c")
    msg, _ = proc.take(lambda m: isinstance(m, tuple), 0)
    assert msg == ("b", 1)
    assert proc.messages() == ["a", "c"], "the messages left behind changed order"
    proc.deliver("d")
    assert [proc.take(None, 0)[0] for _ in range(3)] == ["a", "c", "d"]


def test_a_receive_looks_at_each_message_once_while_it_waits():
    proc, looked = _proc_with(1, 2), []

    def match(m):
        looked.append(m)
        return m == 4
    msg, where = proc.take(match, 0)
    assert msg is NOTHING
    proc.deliver_many([3, 4])
    msg, _ = proc.take(match, where)
    assert msg == 4 and looked == [1, 2, 3, 4], f"looked at {looked}: each once, in order"


def test_clear_takes_everything_in_order():
    proc = _proc_with(1, 2, 3)
    proc.take(lambda m: m == 3, 0)
    proc.deliver(4)
    assert proc.clear() == [1, 2, 4] and proc.messages() == []


def test_selective_receive_of_the_last_of_100k_messages_is_quick():
    me = self()
    for i in range(100_000):
        send(me, ("filler", i))
    send(me, ("wanted", 0))
    start = time.perf_counter()
    assert receive(timeout=5, match=lambda m: m[0] == "wanted") == ("wanted", 0)
    took = time.perf_counter() - start
    assert Process.info(me, "message_queue_len") == ("message_queue_len", 100_000)
    start = time.perf_counter()
    for _ in range(100_000):
        receive(timeout=0)
    drained = time.perf_counter() - start
    # Linear, not quadratic: 100k looks take tens of ms; an indexed deque took seconds.
    assert took < 1.0, f"matching the last of 100k messages took {took:.2f} s"
    assert drained < 2.0, f"taking 100k messages one by one took {drained:.2f} s"


def test_messages_from_many_senders_all_arrive():
    me = self()

    def burst(tag):
        for i in range(500):
            send(me, (tag, i))
    threads = [threading.Thread(target=burst, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    got = [receive(timeout=5) for _ in range(2000)]
    for tag in range(4):
        assert [i for t, i in got if t == tag] == list(range(500)), \
            f"sender {tag}'s messages were lost or reordered"


def test_a_process_sleeping_in_receive_is_woken_by_a_message():
    me = self()
    threading.Timer(0.2, send, [me, "wake"]).start()
    start = time.perf_counter()
    assert receive(timeout=5) == "wake"
    assert time.perf_counter() - start < 2


def test_spawned_processes_share_nothing_but_messages():
    me = self()
    pids = [spawn(lambda n: send(me, n * n), n) for n in range(50)]
    assert sorted(receive(timeout=5) for _ in pids) == [n * n for n in range(50)]
