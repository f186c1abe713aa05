"""Node names: ``gus@vm`` (short) and ``gus@127.0.0.1`` (long).

Erlang's rules, kept here so every other module can trust a name it is given:

* a *short* name is ``name`` or ``name@<this host's short name>``: the node is
  reachable only from this machine, so it listens on loopback;
* a *long* name is ``name@<IP address or fully qualified host>`` (the host has a
  dot in it); ``127.x`` addresses listen on that loopback address, any other host
  on the address it resolves to;
* short- and long-named nodes never talk to each other (Erlang refuses too).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["NodeName", "parse", "short_host", "NO_NODE"]

NO_NODE = "nonode@nohost"          # Node.self() before Node.start, as in Erlang
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SHORT_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
_LONG_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")


@lru_cache(maxsize=1)
def short_host() -> str:
    """This machine's short host name (``hostname -s``), as Erlang's ``--sname`` uses."""
    return socket.gethostname().split(".")[0] or "localhost"


@dataclass(frozen=True)
class NodeName:
    """A parsed, valid node name."""

    name: str        # the part before '@'
    host: str        # the part after '@'
    long: bool       # long name (--name) or short name (--sname)

    @property
    def full(self) -> str:
        return f"{self.name}@{self.host}"

    def __str__(self) -> str:
        return self.full

    def address(self) -> str:
        """The IP address this node listens on (and where its host's port mapper is)."""
        if not self.long and self.host == short_host():
            return "127.0.0.1"
        try:
            return str(ipaddress.ip_address(self.host))
        except ValueError:
            pass
        try:
            return socket.gethostbyname(self.host)
        except OSError as exc:
            raise ValueError(f"cannot resolve the host of node {self.full!r} ({exc}); "
                             f"use an IP address, e.g. '{self.name}@127.0.0.1'") from None


def parse(text: object, *, long: bool | None = None) -> NodeName:
    """Parse and check a node name; raise ``TypeError``/``ValueError`` naming the fix.

    ``long=None`` guesses the kind from the host part (a dot means a long name),
    ``long=False`` is ``--sname`` and ``long=True`` is ``--name``.
    """
    if not isinstance(text, str):
        raise TypeError(f"a node name is a string like 'gus' or 'gus@127.0.0.1', "
                        f"not {type(text).__name__} {text!r}")
    name, sep, host = text.partition("@")
    if not _NAME_RE.match(name):
        raise ValueError(f"malformed node name {text!r}: the part before '@' must be "
                         f"letters, digits, '_' or '-' (e.g. 'gus' or 'gus@127.0.0.1')")
    if sep and not host:
        raise ValueError(f"malformed node name {text!r}: nothing after '@'")
    if "@" in host:
        raise ValueError(f"malformed node name {text!r}: one '@' only, between the name and "
                         f"the host, e.g. '{name}@{short_host()}'")
    if long is True and not sep:
        raise ValueError(f"a long name needs a host: '{name}@127.0.0.1' or "
                         f"'{name}@host.example' (or use a short name: --sname {name})")
    if not sep:
        return NodeName(name, short_host(), False)
    is_long = "." in host if long is None else long
    if is_long:
        if "." not in host or not _LONG_HOST_RE.match(host):
            raise ValueError(f"malformed long node name {text!r}: the host must be an IP "
                             f"address or a fully qualified name, e.g. '{name}@127.0.0.1'")
        return NodeName(name, host, True)
    if not _SHORT_HOST_RE.match(host):
        raise ValueError(f"malformed short node name {text!r}: the host must be a short "
                         f"host name without dots, e.g. '{name}@{short_host()}'")
    return NodeName(name, host, False)
