"""Fragments and the distribution header: how a BEAM node frames big messages.

Erlang's twin is erts's "Distribution Protocol" (DFLAG_FRAGMENTS, OTP 22 and later):
once both nodes set that flag, no frame is ``'p'`` (pass-through) any more. Each is

    131 'D' NumberOfAtomCacheRefs  Control  [Message]          a whole message
    131 'E' SequenceId FragmentId NumberOfAtomCacheRefs  data  its first fragment
    131 'F' SequenceId FragmentId  data                        the next ones

with the terms *without* their 131 version byte. FragmentId counts down to 1 (the
last fragment); fragments of different messages (SequenceIds) may interleave. So a
message of any size travels in frames of OTP's choosing, and a node that takes
fragments never has to receive one giant frame.

This node never sets DFLAG_DIST_HDR_ATOM_CACHE, so erts never uses the atom cache
with it: NumberOfAtomCacheRefs is always 0 (measured with OTP 25), and a header that
claims cache references is refused as a broken message. ``Reassembly.feed`` turns
every frame into the bytes and offset where its control message starts, its terms
without version bytes, for the dialect to read (``_beam``); ``header`` is what we
put before our own frames.

Memory: a message being reassembled holds exactly the bytes received for it.
"""

from __future__ import annotations

import struct

from ._etf import VERSION, BadTerm

__all__ = ["Reassembly", "HEADER"]

DIST_HEADER, DIST_FRAG_HEADER, DIST_FRAG_CONT = 68, 69, 70     # 'D', 'E', 'F'
HEADER = bytes([VERSION, DIST_HEADER, 0])                      # 'D', no atom cache refs
_IDS = struct.Struct("!QQ")    # SequenceId, FragmentId


class Reassembly:
    """The fragments of one connection's messages in flight, by SequenceId."""

    def __init__(self, node: str, creation: int):
        self.node, self.creation = node, creation
        self.partial: dict[int, list] = {}        # SequenceId -> [next id, chunks]
        self.joined = 0                           # messages that came in fragments

    def feed(self, frame: memoryview):
        """The whole message ``frame`` completes, as ``(data, at)`` with its control
        message (a term without its version byte) at ``data[at]``; ``(frame, None)``
        for a ``'p'`` frame; None while fragments are missing. BadTerm for a frame that
        breaks the protocol."""
        if frame[0] != VERSION or len(frame) < 3:
            return frame, None                    # 'p' (a node without fragments)
        kind = frame[1]
        if kind == DIST_HEADER:
            return self._whole(frame, 2)
        if kind not in (DIST_FRAG_HEADER, DIST_FRAG_CONT) or len(frame) < 2 + _IDS.size:
            raise BadTerm(f"distribution header {kind} is not one of 'D', 'E', 'F'")
        seq, frag = _IDS.unpack_from(frame, 2)
        at = 2 + _IDS.size
        if kind == DIST_FRAG_HEADER:
            if seq in self.partial or frag == 0:
                raise BadTerm(f"fragment header for message {seq} out of order")
            if frag == 1:                         # a single fragment: the whole of it
                return self._whole(frame, at)
            self.partial[seq] = [frag - 1, [bytes(frame[at:])]]
            return None
        entry = self.partial.get(seq)
        if entry is None or entry[0] != frag:
            raise BadTerm(f"fragment {frag} of message {seq} out of order")
        entry[1].append(bytes(frame[at:]))
        if frag > 1:
            entry[0] = frag - 1
            return None
        del self.partial[seq]
        self.joined += 1
        return self._whole(memoryview(b"".join(entry[1])), 0)

    def _whole(self, data: memoryview, at: int) -> tuple[memoryview, int]:
        """``data[at:]`` is the atom cache header, the control, the message."""
        if data[at] != 0:
            raise BadTerm(f"{data[at]} atom cache references, but this node never "
                          f"agreed to an atom cache (DFLAG_DIST_HDR_ATOM_CACHE)")
        return data, at + 1
