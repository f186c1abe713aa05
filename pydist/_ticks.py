"""Heartbeats by the other node's figure: how long a connection may stay silent, and
how often we tick it.

Erlang's twin is ``net_kernel``'s ticker and ``net_ticktime`` (T): every node ticks a
quiet connection every T/4 and drops one it has heard nothing from for about T. A
pydist peer uses the node's ``heartbeat`` instead (see _dist). A BEAM node's T is its
own (8-300 s in practice, down to 1 s allowed), so after connecting we ask it
(``net_kernel:get_net_ticktime/0``) and take its figure both ways:

- we give up on it after T s of silence (it ticks every T/4: four ticks missed),
  and the log names T;
- we tick it every T/8 at most, so it hears from us well within its own limit.

Until its answer (a few ms) we tick it every ``FIRST_TICKS`` s, short enough for any
T; a node that cannot answer (a C node) gets Erlang's default of 60 s for the silence
and our own heartbeat's ticks.
"""

from __future__ import annotations

from . import _transport as wire
from ._errors import BadRpc

__all__ = ["BEAM_TICKTIME", "limit", "learn", "period"]

BEAM_TICKTIME = 60.0           # Erlang's default net_ticktime, assumed until we know
TICKS_PER_TICKTIME = 8         # ours to a BEAM node: twice as often as it ticks us
FIRST_TICKS = 0.125            # until we know its T (net_ticktime 1 s: T/8)


def limit(dist, channel, silence: float, tick_every: float, why: str) -> None:
    """Let ``channel`` stay silent ``silence`` s (``why`` says whose figure) and tick it
    when we have written nothing for ``tick_every`` s. The reader re-arms its receive
    timeout from ``channel.silence`` (see _reader), and the heartbeat thread wakes to
    the new interval, so a change applies at once."""
    channel.silence, channel.tick_every, channel.silence_why = silence, tick_every, why
    wire.recv_timeout(channel.conn, silence)
    dist.retick.set()


def learn(dist, name: str) -> None:
    """Ask the BEAM node ``name`` its net_ticktime and go by it (run in a process of
    its own, as the connection starts)."""
    from ._transport import CALL, encode
    try:
        answer = dist.request(name, CALL, encode(("net_kernel", "get_net_ticktime", [])),
                              True, timeout=5.0)
    except (BadRpc, ValueError, TypeError) as exc:
        peer = dist.peers.get(name)
        if peer is not None:
            dist.log(f"cannot learn the net_ticktime of {name} ({exc}): assuming "
                     f"Erlang's default of {BEAM_TICKTIME:g} s")
            limit(dist, peer.channel, max(dist.heartbeat, BEAM_TICKTIME),
                  dist.heartbeat / 4, f"Erlang's default net_ticktime, {BEAM_TICKTIME:g} s")
        return
    if isinstance(answer, tuple) and len(answer) == 2:    # {ongoing_change_to, T}
        answer = answer[1]
    peer = dist.peers.get(name)
    if peer is None or isinstance(answer, bool) or not isinstance(answer, int) \
            or answer <= 0:
        return
    limit(dist, peer.channel, float(answer), answer / TICKS_PER_TICKTIME,
          f"its net_ticktime is {answer} s")


def period(dist) -> float:
    """How long the heartbeat thread sleeps: half the shortest tick interval, so no
    connection waits more than 1.5 of its interval for a tick."""
    shortest = dist.heartbeat / 4
    for peer in list(dist.peers.values()):
        shortest = min(shortest, getattr(peer.channel, "tick_every", shortest))
    return 2 * shortest
