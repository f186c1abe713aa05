"""The serving side of each contender, in its own OS process.

``python -m bench.servers KIND`` prints the port it listens on, then serves until its
standard input closes (so it never outlives the benchmark).
"""

import sys
import threading

AUTHKEY = b"bench-cookie"


class Api:
    """What every rpc contender serves."""

    def add(self, a, b):
        return a + b


def _serve_connection(conn):
    count = 0
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        kind = msg[0]
        if kind == "call":
            conn.send(msg[1] + msg[2])
        elif kind == "echo":
            conn.send(msg[1])
        elif kind == "done":
            conn.send(count)
            count = 0
        else:
            count += 1


def _connection_server(module):
    listener = module.Listener(("127.0.0.1", 0), authkey=AUTHKEY)

    def accept_forever():
        while True:
            conn = listener.accept()
            threading.Thread(target=_serve_connection, args=(conn,), daemon=True).start()
    threading.Thread(target=accept_forever, daemon=True).start()
    return listener.address[1]


def _pyro5():
    import Pyro5.api
    daemon = Pyro5.api.Daemon(host="127.0.0.1")
    uri = daemon.register(Pyro5.api.expose(Api), "api")
    threading.Thread(target=daemon.requestLoop, daemon=True).start()
    return str(uri)


def _rpyc():
    import rpyc
    from rpyc.utils.server import ThreadedServer

    class Service(rpyc.Service):
        def exposed_add(self, a, b):
            return a + b
    server = ThreadedServer(Service, hostname="127.0.0.1", port=0,
                            protocol_config={"allow_public_attrs": True})
    threading.Thread(target=server.start, daemon=True).start()
    return server.port


def _zmq():
    import zmq
    sock = zmq.Context.instance().socket(zmq.REP)
    port = sock.bind_to_random_port("tcp://127.0.0.1")

    def loop():
        while True:
            msg = sock.recv_pyobj()
            sock.send_pyobj(msg[1] + msg[2])
    threading.Thread(target=loop, daemon=True).start()
    return port


def main(kind: str) -> None:
    if kind == "floor":
        import multiprocessing.connection as module
        address = _connection_server(module)
    elif kind == "multiprocess":
        import multiprocess.connection as module
        address = _connection_server(module)
    else:
        address = {"pyro5": _pyro5, "rpyc": _rpyc, "zmq": _zmq}[kind]()
    print(address, flush=True)
    sys.stdin.read()                      # until the benchmark closes our stdin


if __name__ == "__main__":
    main(sys.argv[1])
