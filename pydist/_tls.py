"""Encryption between nodes: TLS (Erlang: ``-proto_dist inet_tls``).

The cookie proves a node may join, but without TLS what nodes say to each other
crosses the network as it is: pickles anyone on a shared network can read. With TLS
every connection is encrypted, and each side must show a certificate signed by the
workshop's own authority before the cookie challenge even starts.

    python -m pydist tls certs/                    # once: an authority and a certificate
    python -m pydist --name gus@192.0.2.1 --tls certs/
    Node.start("gus@192.0.2.1", tls="certs")       # or PYDIST_TLS=certs

Copy the folder to every machine of the workshop: holding it is like holding the
cookie. A node with TLS speaks only TLS: a node without it cannot connect, nor it
to one. Peers started with ``peer.start`` use the same folder.

An ``SSLSocket`` must not be read by one thread while another writes it, and a
connection here has a reader thread and many writers; so the TLS state is kept in
memory (``ssl.MemoryBIO``), touched only under a lock, and no lock is held while the
socket itself blocks.
"""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import threading
from pathlib import Path

__all__ = ["make_certificates", "contexts", "Stream", "FILES"]

FILES = ("ca.pem", "node.pem", "node.key")
VALID_DAYS = 365
_READ = 256 * 1024


# ---------------------------------------------------------------- certificates

def make_certificates(folder: str | os.PathLike) -> Path:
    """Make ``ca.pem`` (the workshop's authority), ``node.pem`` and ``node.key`` (the
    certificate every node shows, signed by it) in ``folder``. The authority's own key
    is not kept: to add a machine later, copy the folder; to start over, run again."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        raise ImportError("making certificates needs the cryptography package: "
                          "pip install cryptography (or pip install -e '.[tls]')") from None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject: str, key, issuer: str, signer, ca: bool):
        usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None),
                                  critical=True))
        if not ca:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, node_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca = certificate("pydist workshop authority", ca_key, "pydist workshop authority",
                     ca_key, True)
    node = certificate("pydist node", node_key, "pydist workshop authority", ca_key, False)
    pem = serialization.Encoding.PEM
    _write(folder / "ca.pem", ca.public_bytes(pem), 0o644)
    _write(folder / "node.pem", node.public_bytes(pem), 0o644)
    _write(folder / "node.key", node_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)
    return folder


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def contexts(folder: str | os.PathLike) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(for accepting, for connecting): both require the other side's certificate,
    signed by the folder's authority (the name in it is not checked: the cookie
    names the node)."""
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"the TLS folder {folder} lacks {', '.join(missing)}; make one with "
                         f"`python -m pydist tls {folder}` and copy it to every machine")
    made = []
    for purpose in (ssl.PROTOCOL_TLS_SERVER, ssl.PROTOCOL_TLS_CLIENT):
        context = ssl.SSLContext(purpose)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = False
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(folder / "ca.pem")
        context.load_cert_chain(folder / "node.pem", folder / "node.key")
        made.append(context)
    return made[0], made[1]


# ---------------------------------------------------------------- the stream

class Stream:
    """TLS over a blocking socket, for one reader thread and serialised writers."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_side: bool):
        self.sock = sock
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_side=server_side)
        self._lock = threading.Lock()        # the TLS state
        self._sending = threading.Lock()     # records go out in the order they were made

    def handshake(self) -> None:
        """Both certificates checked, keys agreed; ``ssl.SSLError`` if not."""
        while True:
            try:
                with self._lock:
                    self._tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if not self._feed():
                    raise ConnectionError("closed during the TLS handshake") from None

    def send_all(self, data: bytes) -> None:
        with self._sending:
            with self._lock:
                self._tls.write(data)
            self._send_out()

    def recv_into(self, view: memoryview) -> int:
        """Like ``socket.recv_into``: 0 at the end of the stream."""
        while True:
            try:
                with self._lock:
                    n = self._tls.read(len(view), view)
                break
            except ssl.SSLWantReadError:
                if not self._feed():
                    return 0
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return 0
            except ssl.SSLError as exc:
                raise ConnectionError(f"TLS: {exc}") from None
        if self._out.pending and self._sending.acquire(False):   # e.g. a key update; if
            try:                                   # a writer is busy, it sends it along
                self._send_out()
            finally:
                self._sending.release()
        return n

    def _feed(self) -> bool:
        data = self.sock.recv(_READ)
        with self._lock:
            if data:
                self._in.write(data)
            else:
                self._in.write_eof()
        return bool(data)

    def _flush(self) -> None:
        with self._sending:
            self._send_out()

    def _send_out(self) -> None:
        """Send what the TLS layer has made, in order; the caller holds ``_sending``."""
        with self._lock:
            out = self._out.read()
        if out:
            self.sock.sendall(out)
