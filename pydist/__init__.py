"""pydist: Elixir-style distribution for Python, for learning.

Every name here has a twin in the Elixir of the course (see ROSETTA in the README):

    from pydist import (Node, Process, rpc, peer, spawn, send, receive, flush, self,
                        pid_to_list, BadRpc)

    Node.start("gus")                        # iex --sname gus
    server = peer.start("server")            # a second terminal: iex --sname server
    rpc.call(server.node, "operator", "add", [1, 2])   # :rpc.call(:server@vm, Kernel, :+, [1, 2])
"""

from . import peer, pg, rpc
from ._errors import BadRpc, ProcessExit, PydistError, PydistWarning
from ._etf import Atom
from ._global import Global
from ._node import Node
from ._process import Pid, Ref, flush, pid_to_list, receive, self, send, spawn
from ._registry import Process
from ._signals import spawn_link
from .gen_server import GenServer

__all__ = ["Node", "Process", "rpc", "peer", "pg", "spawn", "spawn_link", "send", "receive",
           "flush", "self", "pid_to_list", "Global", "GenServer", "BadRpc", "PydistError",
           "ProcessExit", "PydistWarning", "Pid", "Ref", "Atom"]
__version__ = "0.1.0"
