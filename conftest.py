"""The test session's own port mapper port and cookie, set before anything runs.

This file sits at the top of the course so that it applies to every run of pytest,
whatever its arguments: ``pytest notebooks/`` as much as ``pytest tests/``. A
learner's lab and its nodes use the host's port mapper (4369, or the port in their
PYDIST_EPMD_PORT/ERL_EPMD_PORT); the tests, notebooks included, register their nodes
(``a``, ``b``, ``server``...) with a mapper on a free port of their own, so a running
lab neither takes their names nor shows up in their ``names`` listings.
"""

import os
import socket


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_port = str(_free_port())
os.environ["PYDIST_EPMD_PORT"] = _port      # pydist nodes, and the notebooks' kernels
os.environ["ERL_EPMD_PORT"] = _port         # erl/elixir nodes a test or notebook starts
os.environ["PYDIST_COOKIE"] = "pydist-test-cookie"
os.environ["PYDIST_EPMD_IDLE"] = "1"
os.environ.pop("PYDIST_HEARTBEAT", None)
