"""SNMPv3 User-based Security Model (RFC 3414/3826/7860), authoritative (agent) side."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:  # cryptography >= 47 keeps CFB under `decrepit`
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB

from lab.snmp import ber
from lab.snmp.ber import BerError

# hash name, HMAC output truncation (bytes) per RFC 3414 / RFC 7860.
AUTH: dict[str, tuple[str, int]] = {
    "md5": ("md5", 12),
    "sha": ("sha1", 12),
    "sha224": ("sha224", 16),
    "sha256": ("sha256", 24),
    "sha384": ("sha384", 32),
    "sha512": ("sha512", 48),
}
PRIV_KEY_LEN = {"aes": 16, "aes128": 16, "aes192": 24, "aes256": 32}

USM_STATS = (1, 3, 6, 1, 6, 3, 15, 1, 1)
UNSUPPORTED_SEC_LEVELS = (*USM_STATS, 1, 0)
NOT_IN_TIME_WINDOWS = (*USM_STATS, 2, 0)
UNKNOWN_USER_NAMES = (*USM_STATS, 3, 0)
UNKNOWN_ENGINE_IDS = (*USM_STATS, 4, 0)
WRONG_DIGESTS = (*USM_STATS, 5, 0)
DECRYPTION_ERRORS = (*USM_STATS, 6, 0)

FLAG_AUTH = 0x01
FLAG_PRIV = 0x02
FLAG_REPORTABLE = 0x04
TIME_WINDOW_S = 150


@lru_cache(maxsize=256)
def master_key(hash_name: str, password: bytes) -> bytes:
    """RFC 3414 A.2 password-to-key: hash of 1 MiB of the repeated password (cached)."""
    if not password:
        raise ValueError("empty SNMPv3 password")
    reps = 1048576 // len(password) + 1
    return hashlib.new(hash_name, (password * reps)[:1048576]).digest()


@lru_cache(maxsize=1024)
def localized_key(hash_name: str, password: bytes, engine_id: bytes) -> bytes:
    """Ku localised to an engine: H(Ku || engineID || Ku) (cached)."""
    ku = master_key(hash_name, password)
    return hashlib.new(hash_name, ku + engine_id + ku).digest()


def priv_key(auth: str, priv: str, password: bytes, engine_id: bytes) -> bytes:
    """The AES key; longer than the hash output via Blumenthal extension (Kul || H(Kul) || ...)."""
    hash_name = AUTH[auth][0]
    key = localized_key(hash_name, password, engine_id)
    need = PRIV_KEY_LEN[priv]
    while len(key) < need:
        key += hashlib.new(hash_name, key).digest()
    return key[:need]


@lru_cache(maxsize=4096)
def _aes(key: bytes) -> algorithms.AES:
    return algorithms.AES(key)  # checking the key is a third of a small message's cipher cost


def aes_cfb(key: bytes, boots: int, etime: int, salt: bytes, data: bytes, encrypt: bool) -> bytes:
    """AES-CFB128 with the RFC 3826 IV (engineBoots || engineTime || salt)."""
    iv = boots.to_bytes(4, "big") + etime.to_bytes(4, "big") + salt
    cipher = Cipher(_aes(key), CFB(iv))
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(data) + ctx.finalize()


@dataclass(frozen=True, slots=True)
class UsmUser:
    """One USM user: protocols and passwords (None for noAuth/noPriv)."""

    name: bytes
    auth: str | None = "sha256"
    auth_password: bytes | None = None
    priv: str | None = "aes128"
    priv_password: bytes | None = None

    def level(self) -> int:
        """The message flags this user requires (auth, auth|priv or none)."""
        if self.auth is None:
            return 0
        return FLAG_AUTH | (FLAG_PRIV if self.priv else 0)


@dataclass(slots=True)
class V3Request:
    """An authenticated, decrypted request, with what is needed to answer it."""

    msg_id: int
    max_size: int
    flags: int
    user: UsmUser
    context_engine_id: bytes
    context_name: bytes
    pdu: ber.Pdu


@dataclass(slots=True)
class _Parsed:
    msg_id: int
    max_size: int
    flags: int
    engine_id: bytes
    boots: int
    etime: int
    user: bytes
    auth_start: int
    auth_end: int
    priv_params: bytes
    scoped_pos: int
    end: int
    msg: bytes


@dataclass
class UsmEngine:
    """The authoritative engine of one simulated device."""

    engine_id: bytes
    users: dict[bytes, UsmUser]
    stats: dict[tuple[int, ...], int] = field(default_factory=dict)
    # user name -> (hash name, digest length, localised auth key, privacy key): derived once per user.
    _keys: dict[bytes, tuple[str, int, bytes, bytes | None]] = field(default_factory=dict, repr=False)
    _engine_tlv: bytes = field(default=b"", repr=False)

    @property
    def engine_id_tlv(self) -> bytes:
        """The engine ID as an encoded OCTET STRING (in every message and scoped PDU)."""
        tlv = self._engine_tlv
        if not tlv:
            tlv = self._engine_tlv = ber.octets(self.engine_id)
        return tlv

    def keys(self, user: UsmUser) -> tuple[str, int, bytes, bytes | None]:
        """The hash, digest length, localised auth key and privacy key of an authenticating user."""
        got = self._keys.get(user.name)
        if got is None:
            assert user.auth is not None
            hash_name, trunc = AUTH[user.auth]
            key = localized_key(hash_name, user.auth_password or b"", self.engine_id)
            pkey = (
                priv_key(user.auth, user.priv, user.priv_password or b"", self.engine_id)
                if user.priv
                else None
            )
            got = self._keys[user.name] = (hash_name, trunc, key, pkey)
        return got

    @staticmethod
    def make_engine_id(seed: str) -> bytes:
        """An RFC 3411 engine ID (net-snmp enterprise, format 'octets') derived from a seed."""
        return b"\x80\x00\x1f\x88\x05" + hashlib.sha256(seed.encode()).digest()[:12]

    def _parse(self, msg: bytes) -> _Parsed:
        end = len(msg)
        s, e = ber.expect(msg, 0, end, ber.SEQUENCE)
        version, p = ber.read_int(msg, s, e)
        if version != 3:
            raise BerError("not v3")
        hs, he = ber.expect(msg, p, e, ber.SEQUENCE)
        msg_id, q = ber.read_int(msg, hs, he)
        max_size, q = ber.read_int(msg, q, he)
        flags_b, q = ber.read_octets(msg, q, he)
        model, q = ber.read_int(msg, q, he)
        if model != 3 or len(flags_b) != 1:
            raise BerError("not USM")
        ps, pe = ber.expect(msg, he, e, ber.OCTET_STRING)
        ss, se = ber.expect(msg, ps, pe, ber.SEQUENCE)
        engine_id, q = ber.read_octets(msg, ss, se)
        boots, q = ber.read_int(msg, q, se)
        etime, q = ber.read_int(msg, q, se)
        user, q = ber.read_octets(msg, q, se)
        auth_start, auth_end = ber.expect(msg, q, se, ber.OCTET_STRING)
        priv_params, q = ber.read_octets(msg, auth_end, se)
        return _Parsed(
            msg_id, max_size, flags_b[0], engine_id, boots, etime, user, auth_start, auth_end,
            priv_params, pe, e, msg,
        )  # fmt: skip

    def process(self, msg: bytes, boots: int, etime: int) -> tuple[V3Request | None, bytes | None]:
        """Check one v3 message: (request, None), (None, report to send) or (None, None) to drop."""
        try:
            m = self._parse(msg)
        except (BerError, IndexError):
            return None, None
        flags = m.flags
        reportable = bool(flags & FLAG_REPORTABLE)
        if flags & FLAG_PRIV and not flags & FLAG_AUTH:
            return None, None
        if m.engine_id != self.engine_id:
            return None, self._report(m, UNKNOWN_ENGINE_IDS, None, 0, boots, etime, None, reportable)
        user = self.users.get(m.user)
        if user is None:
            return None, self._report(m, UNKNOWN_USER_NAMES, None, 0, boots, etime, None, reportable)
        if (flags & 0x03) != user.level():
            return None, self._report(m, UNSUPPORTED_SEC_LEVELS, None, 0, boots, etime, None, reportable)
        pkey: bytes | None = None
        if user.auth is not None:
            hash_name, trunc, key, pkey = self.keys(user)
            if m.auth_end - m.auth_start != trunc:
                return None, self._report(m, WRONG_DIGESTS, None, 0, boots, etime, None, reportable)
            zeroed = msg[: m.auth_start] + bytes(trunc) + msg[m.auth_end :]
            digest = hmac.digest(key, zeroed, hash_name)[:trunc]
            if not hmac.compare_digest(digest, msg[m.auth_start : m.auth_end]):
                return None, self._report(m, WRONG_DIGESTS, None, 0, boots, etime, None, reportable)
            if m.boots != boots or abs(m.etime - etime) > TIME_WINDOW_S or boots >= 2147483647:
                return None, self._report(
                    m, NOT_IN_TIME_WINDOWS, user, FLAG_AUTH, boots, etime, None, reportable
                )
        scoped_pos = m.scoped_pos
        scoped = msg
        scoped_end = m.end
        if flags & FLAG_PRIV:
            try:
                cs, ce = ber.expect(msg, m.scoped_pos, m.end, ber.OCTET_STRING)
                if len(m.priv_params) != 8 or pkey is None:
                    raise BerError("bad privParameters")
                scoped = aes_cfb(pkey, m.boots, m.etime, m.priv_params, msg[cs:ce], encrypt=False)
                scoped_pos, scoped_end = 0, len(scoped)
                ber.read_tlv(scoped, 0, scoped_end)  # garbage after decryption -> decryptionError
            except (BerError, ValueError):
                return None, self._report(m, DECRYPTION_ERRORS, None, 0, boots, etime, 0, reportable)
        try:
            ss, se = ber.expect(scoped, scoped_pos, scoped_end, ber.SEQUENCE)
            ctx_engine, q = ber.read_octets(scoped, ss, se)
            ctx_name, q = ber.read_octets(scoped, q, se)
            pdu = ber.decode_pdu(scoped, q, se)
        except (BerError, IndexError):
            if flags & FLAG_PRIV:
                return None, self._report(m, DECRYPTION_ERRORS, None, 0, boots, etime, 0, reportable)
            return None, None
        return V3Request(m.msg_id, m.max_size, flags, user, ctx_engine, ctx_name, pdu), None

    @staticmethod
    def _plain_request_id(msg: bytes, m: _Parsed) -> int:
        """The request-id of a plaintext scoped PDU (0 when encrypted or unreadable)."""
        try:
            ss, se = ber.expect(msg, m.scoped_pos, m.end, ber.SEQUENCE)
            _, q = ber.read_octets(msg, ss, se)
            _, q = ber.read_octets(msg, q, se)
            _, ps, pe = ber.read_tlv(msg, q, se)
            return ber.read_int(msg, ps, pe)[0]
        except (BerError, IndexError):
            return 0

    def _report(
        self,
        m: _Parsed,
        counter: tuple[int, ...],
        user: UsmUser | None,
        flags: int,
        boots: int,
        etime: int,
        request_id: int | None,
        reportable: bool,
    ) -> bytes | None:
        """A REPORT PDU; request_id None: the plaintext request's (read only when a report is sent)."""
        self.stats[counter] = self.stats.get(counter, 0) + 1
        if not reportable:
            return None
        if request_id is None:
            request_id = self._plain_request_id(m.msg, m)
        vb = ber.varbind(ber.enc_oid(counter), ber.counter32(self.stats[counter]))
        pdu = ber.encode_pdu(ber.REPORT, request_id, 0, 0, [vb])
        scoped = ber.tlv(ber.SEQUENCE, ber.octets(self.engine_id) + ber.octets(b"") + pdu)
        return self.encode(m.msg_id, flags, user if flags else None, scoped, boots, etime)

    def encode(
        self, msg_id: int, flags: int, user: UsmUser | None, scoped: bytes, boots: int, etime: int
    ) -> bytes:
        """A v3 message carrying `scoped` (a plaintext scopedPDU), encrypted/authenticated per flags."""
        auth_len = 0
        salt = b""
        hash_name, key = "", b""
        if user is not None and flags & FLAG_AUTH and user.auth is not None:
            hash_name, auth_len, key, pkey = self.keys(user)
            if flags & FLAG_PRIV and pkey is not None:
                salt = os.urandom(8)
                scoped = ber.octets(aes_cfb(pkey, boots, etime, salt, scoped, encrypt=True))
        name = user.name if user is not None else b""
        head = self.engine_id_tlv + ber.enc_int(boots) + ber.enc_int(etime) + ber.octets(name)
        sec = ber.tlv(ber.SEQUENCE, head + ber.octets(bytes(auth_len)) + ber.octets(salt))
        header = ber.tlv(
            ber.SEQUENCE,
            ber.enc_int(msg_id) + ber.enc_int(65507) + ber.octets(bytes((flags,))) + ber.enc_int(3),
        )
        sec_tlv = ber.tlv(ber.OCTET_STRING, sec)
        body = ber.enc_int(3) + header + sec_tlv + scoped
        msg = ber.tlv(ber.SEQUENCE, body)
        if not auth_len or user is None or user.auth is None:
            return msg
        # Locate the zeroed authParameters: after the outer header, version, header, the two
        # security-parameter headers and the fields before it, plus its own 2-byte tag/length.
        outer = len(msg) - len(body)
        sec_hdr = len(sec_tlv) - len(sec) + (len(sec) - len(head) - 2 - auth_len - 2 - len(salt))
        pos = outer + 3 + len(header) + sec_hdr + len(head) + 2
        digest = hmac.digest(key, msg, hash_name)[:auth_len]
        return msg[:pos] + digest + msg[pos + auth_len :]
