"""The device side of TP-Link's KLAP protocol (newer Kasa and all Tapo firmware), over HTTP.

Written from the protocol's description, not from a client's code:

- `POST /app/handshake1`, body: the client's 16 random bytes (local seed). The device answers its
  own 16 random bytes (remote seed) followed by a SHA-256 proof that it knows the account's
  auth hash, and a `TP_SESSIONID` cookie.
- `POST /app/handshake2`, body: the client's SHA-256 proof. 200 when it matches, else 403.
- `POST /app/request?seq=N`, body: a 32-byte SHA-256 signature then the AES-128-CBC ciphertext
  of the JSON request; the answer is built the same way with the same sequence number.

Login version 1 (Kasa) hashes the account as md5(md5(user) + md5(password)), version 2 (Tapo)
as sha256(sha1(user) + sha1(password)), and the two versions order the proofs' inputs
differently. The AES key, the IV's first 12 bytes, the IV's starting sequence number and the
signature key all derive from SHA-256 of a label ("lsk", "iv", "ldk") and both seeds and the
auth hash. Each request's IV ends with its sequence number (signed 32-bit, big-endian).
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

_SEQ = struct.Struct(">l")


def auth_hash(username: str, password: str, login_version: int) -> bytes:
    """The account hash both sides prove they know (never sent)."""
    if login_version >= 2:
        return _sha256(_sha1(username.encode()) + _sha1(password.encode()))
    return hashlib.md5(hashlib.md5(username.encode()).digest()
                       + hashlib.md5(password.encode()).digest()).digest()


def device_proof(local: bytes, remote: bytes, account: bytes, login_version: int) -> bytes:
    """What handshake1's answer carries after the remote seed."""
    return _sha256(local + remote + account) if login_version >= 2 else _sha256(local + account)


def client_proof(local: bytes, remote: bytes, account: bytes, login_version: int) -> bytes:
    """What the client must send in handshake2."""
    return _sha256(remote + local + account) if login_version >= 2 else _sha256(remote + account)


class BadRequest(Exception):
    """A request the device cannot decrypt or whose signature is wrong."""


class Session:
    """One logged-in client: the keys derived from both seeds and the account hash."""

    def __init__(self, local: bytes, remote: bytes, account: bytes) -> None:
        seeds = local + remote + account
        self.key = _sha256(b"lsk" + seeds)[:16]
        iv = _sha256(b"iv" + seeds)
        self.iv12 = iv[:12]
        self.first_seq = _SEQ.unpack(iv[-4:])[0]
        self.sig_key = _sha256(b"ldk" + seeds)[:28]
        self.confirmed = False  # handshake2 passed
        self.expected_proof = b""

    def open(self, seq: int, body: bytes) -> bytes:
        """The plaintext of a request body sent with `seq`; BadRequest if it is not genuine."""
        signature, ciphertext = body[:32], body[32:]
        if len(signature) < 32 or not ciphertext or len(ciphertext) % 16:
            raise BadRequest("request body is not a signature and whole AES blocks")
        if not secrets.compare_digest(signature, self._sign(seq, ciphertext)):
            raise BadRequest("request signature does not match")
        decryptor = self._cipher(seq).decryptor()
        return _unpad(decryptor.update(ciphertext) + decryptor.finalize())

    def seal(self, seq: int, plaintext: bytes) -> bytes:
        """The answer body to a request sent with `seq`."""
        encryptor = self._cipher(seq).encryptor()
        ciphertext = encryptor.update(_pad(plaintext)) + encryptor.finalize()
        return self._sign(seq, ciphertext) + ciphertext

    def _sign(self, seq: int, ciphertext: bytes) -> bytes:
        return _sha256(self.sig_key + _SEQ.pack(seq) + ciphertext)

    def _cipher(self, seq: int) -> Any:  # cryptography's Cipher
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        return Cipher(algorithms.AES(self.key), modes.CBC(self.iv12 + _SEQ.pack(seq)))


@dataclass
class KlapAccount:
    """The account a device is bound to and its login version; its logged-in sessions."""

    username: str
    password: str
    login_version: int = 2
    sessions: dict[str, Session] = field(default_factory=dict)
    handshakes: int = 0  # how many handshake1 a client started (tests: sessions are reused)

    def handshake1(self, local: bytes) -> tuple[str, bytes]:
        """(session cookie, answer body) for a client's local seed; ValueError if not 16 bytes."""
        if len(local) != 16:
            raise ValueError("the local seed must be 16 bytes")
        self.handshakes += 1
        remote = secrets.token_bytes(16)
        account = auth_hash(self.username, self.password, self.login_version)
        session = Session(local, remote, account)
        session.expected_proof = client_proof(local, remote, account, self.login_version)
        cookie = secrets.token_hex(16).upper()
        if len(self.sessions) > 64:  # clients that never came back
            self.sessions.pop(next(iter(self.sessions)))
        self.sessions[cookie] = session
        return cookie, remote + device_proof(local, remote, account, self.login_version)

    def handshake2(self, cookie: str | None, proof: bytes) -> bool:
        """True (the session may send requests) when the proof matches its handshake1."""
        session = self.sessions.get(cookie or "")
        if session is None or not secrets.compare_digest(proof, session.expected_proof):
            self.sessions.pop(cookie or "", None)
            return False
        session.confirmed = True
        return True

    def session(self, cookie: str | None) -> Session | None:
        """The confirmed session of a cookie, or None (the device then answers 403)."""
        session = self.sessions.get(cookie or "")
        return session if session is not None and session.confirmed else None

    def forget_sessions(self) -> None:
        """Drop every session (a reboot, a session timeout): clients must log in again."""
        self.sessions.clear()


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


def _pad(data: bytes) -> bytes:
    n = 16 - len(data) % 16
    return data + bytes([n]) * n


def _unpad(data: bytes) -> bytes:
    n = data[-1] if data else 0
    if not 1 <= n <= 16 or data[-n:] != bytes([n]) * n:
        raise BadRequest("bad padding")
    return data[:-n]
