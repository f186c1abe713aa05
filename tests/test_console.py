"""Where printed text goes (the console and group leaders)."""
import threading

import pytest

from pydist._console import STDOUT, console


@pytest.fixture
def deferred(monkeypatch):
    """The console as under a Jupyter kernel."""
    monkeypatch.setattr(console, "deferred", True)
    monkeypatch.setattr(console, "held", [])
    yield console
    console.drain()
    console.drain_held()


def test_other_nodes_lines_wait_for_the_cell_end_and_come_in_printing_order(deferred, capsys):
    deferred.emit(STDOUT, "checked the stock\n", "server@vm", stamp=2.0)
    deferred.emit(STDOUT, "wants to know\n", "store@vm", stamp=1.0)
    assert capsys.readouterr().out == ""
    deferred.drain_held()
    assert capsys.readouterr().out == "[store@vm] wants to know\n[server@vm] checked the stock\n"


def test_background_threads_text_waits_for_the_main_thread(deferred, capsys):
    thread = threading.Thread(target=deferred.emit, args=(STDOUT, "from a process\n", None))
    thread.start()
    thread.join()
    assert capsys.readouterr().out == ""
    deferred.drain()
    assert capsys.readouterr().out == "from a process\n"


def test_outside_jupyter_everything_is_printed_at_once(capsys):
    assert not console.deferred
    console.emit(STDOUT, "hello\n", "b@vm")
    assert capsys.readouterr().out == "[b@vm] hello\n"
