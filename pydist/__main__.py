"""``python -m pydist``: the prompt, the port mapper and the exercise checker."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pydist", description="An interactive Python prompt that is a pydist node "
        "(like iex), and the tools around it.")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--sname", metavar="NAME", help="short name: gus -> gus@<this host>")
    who.add_argument("--name", metavar="NAME@HOST", help="long name, e.g. gus@127.0.0.1")
    p.add_argument("--cookie", help="the shared secret (default: PYDIST_COOKIE, "
                   "else ~/.erlang.cookie)")
    p.add_argument("--tls", metavar="FOLDER", help="encrypt every connection with the "
                   "certificates in FOLDER (made by `python -m pydist tls FOLDER`)")
    sub = p.add_subparsers(dest="command")
    e = sub.add_parser("epmd", help="run the port mapper (Erlang's epmd protocol: BEAM "
                       "nodes register with it too) in the foreground")
    e.add_argument("--address", default="127.0.0.1")
    e.add_argument("--port", type=int, default=None, help="default: PYDIST_EPMD_PORT, "
                   "else ERL_EPMD_PORT, else 4369 (epmd's)")
    e.add_argument("--daemon", action="store_true", help=argparse.SUPPRESS)
    e.add_argument("--idle", type=float, default=None, help=argparse.SUPPRESS)
    n = sub.add_parser("names", help="list the nodes registered on this host, pydist's "
                       "and Erlang's (epmd -names)")
    n.add_argument("--address", default="127.0.0.1")
    t = sub.add_parser("tls", help="make a workshop's TLS folder: an authority and a "
                       "node certificate (copy it to every machine)")
    t.add_argument("folder")
    c = sub.add_parser("check", help="check your exercise, e.g. `check 04`")
    c.add_argument("exercise", nargs="?", help="the exercise number, e.g. 04")
    c.add_argument("--all", action="store_true", help="check every exercise")
    c.add_argument("--solutions", action="store_true", help="check the solutions instead")
    c.add_argument("--task", type=int, metavar="N", help="check only task N")
    c.add_argument("--hint", type=int, metavar="N", help="the next hint for task N")
    c.add_argument("--reset", action="store_true", help="make the exercise's stub again "
                   "(yours is kept as .bak)")
    c.add_argument("--progress", action="store_true", help="which tasks of which exercises "
                   "pass")
    pe = sub.add_parser("_peer", help=argparse.SUPPRESS)
    pe.add_argument("node")
    pe.add_argument("parent")
    pe.add_argument("watch_fd", type=int)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "epmd":
        from . import _epmd, _epmd_server
        port = _epmd.epmd_port() if args.port is None else args.port
        if args.daemon:
            _epmd_server._daemon_main(args.address, port, args.idle or _epmd.IDLE_EXIT)
        try:
            _epmd_server.serve(args.address, port, listening=lambda: print(
                f"pydist port mapper on {args.address}:{port} (Ctrl-C stops it)", flush=True))
        except KeyboardInterrupt:
            pass
        except OSError as exc:
            print(f"cannot listen on {args.address}:{port}: {exc} (is a port mapper, "
                  f"pydist's or Erlang's epmd, already running? `python -m pydist names` "
                  f"asks it; PYDIST_EPMD_PORT picks another port)", file=sys.stderr)
            return 1
        return 0
    if args.command == "tls":
        from ._tls import make_certificates
        folder = make_certificates(args.folder)
        print(f"made {folder}/ca.pem, node.pem and node.key: copy {folder} to every machine "
              f"and start each node with --tls {folder} (or PYDIST_TLS={folder})")
        return 0
    if args.command == "names":
        from . import _epmd
        try:
            rows = _epmd.names(args.address)
        except OSError:
            print(f"no port mapper runs on {args.address}:{_epmd.epmd_port()}: no node is up",
                  file=sys.stderr)
            return 1
        print(f"port mapper at {args.address}:{_epmd.epmd_port()}")
        for name, port in rows:
            print(f"name {name} at port {port}")
        return 0
    if args.command == "check":
        from ._checker import main as check_main
        from ._checker import quiet_when_piped
        return quiet_when_piped(check_main, args.exercise, all_=args.all,
                                solutions=args.solutions, task=args.task, hint=args.hint,
                                reset_=args.reset, progress=args.progress)
    if args.command == "_peer":
        from .peer import _child_main
        _child_main(args.node, args.parent, args.watch_fd)
        return 0
    from ._errors import PydistError
    from ._shell import run
    if not (args.name or args.sname):
        _parser().print_help()
        return 2
    try:
        return run(args.name or args.sname, long=bool(args.name), cookie=args.cookie,
                   tls=args.tls)
    except (ValueError, TypeError, PydistError, OSError) as exc:
        print(f"pydist: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
