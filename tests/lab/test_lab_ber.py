"""The lab's BER codec, USM key derivation and robustness against garbage (no network)."""

from __future__ import annotations

import random

from lab.snmp import ber
from lab.snmp.agent import DeviceAgent
from lab.snmp.usm import UsmEngine, UsmUser, localized_key, priv_key
from lab.snmp.view import MibView


def test_integer_encodings_match_x690() -> None:
    assert ber.enc_int(0) == b"\x02\x01\x00"
    assert ber.enc_int(127) == b"\x02\x01\x7f"
    assert ber.enc_int(128) == b"\x02\x02\x00\x80"
    assert ber.enc_int(-1) == b"\x02\x01\xff"
    assert ber.enc_int(-129) == b"\x02\x02\xff\x7f"
    assert ber.counter32(2**32 + 5) == b"\x41\x01\x05"  # wraps
    assert ber.counter32(0xFFFFFFFF) == b"\x41\x05\x00\xff\xff\xff\xff"
    assert ber.counter64(2**64 - 1) == b"\x46\x09\x00" + b"\xff" * 8
    assert ber.gauge32(-3) == b"\x42\x01\x00"  # clamped


def test_oid_round_trip_with_large_sub_identifiers() -> None:
    for oid in [
        (1, 3, 6, 1, 4, 1, 2011, 5, 25, 31, 1, 1, 1, 1, 5, 67108873),
        (1, 3, 6, 1, 2**32 - 1),
        (2, 999, 3),
    ]:
        enc = ber.enc_oid(oid)
        tag, s, e = ber.read_tlv(enc, 0, len(enc))
        assert tag == ber.OBJECT_ID
        assert ber.dec_oid(enc, s, e) == oid
    assert ber.enc_oid((1, 3, 6, 1)) == b"\x06\x03\x2b\x06\x01"


def test_rfc3414_key_localisation_vectors() -> None:
    engine = bytes.fromhex("000000000000000000000002")
    assert localized_key("md5", b"maplesyrup", engine).hex() == "526f5eed9fcce26f8964c2930787d82b"
    assert localized_key("sha1", b"maplesyrup", engine).hex() == "6695febc9288e36282235fc7151f128497b38f3f"
    # AES-256 from SHA-1 needs the Blumenthal extension: Kul || H(Kul), truncated.
    k = priv_key("sha", "aes256", b"maplesyrup", engine)
    assert len(k) == 32 and k[:20] == localized_key("sha1", b"maplesyrup", engine)


def _agent() -> DeviceAgent:
    view = MibView(
        [((1, 3, 6, 1, 2, 1, 1, 5, 0), ber.octets("x")), ((1, 3, 6, 1, 2, 1, 1, 3, 0), ber.timeticks(5))]
    )
    users = {b"u": UsmUser(b"u", "sha256", b"authpassword", "aes128", b"privpassword")}
    return DeviceAgent("t", {b"public": view}, view, usm=UsmEngine(UsmEngine.make_engine_id("t"), users))


def _get(community: bytes, oid: tuple[int, ...], tag: int = ber.GET) -> bytes:
    pdu = ber.encode_pdu(tag, 7, 0, 10, [ber.varbind(ber.enc_oid(oid), ber.NULL_VALUE)])
    return ber.encode_v2c(1, community, pdu)


def test_v2c_get_getnext_and_wrong_community() -> None:
    agent = _agent()
    resp = agent.handle(_get(b"public", (1, 3, 6, 1, 2, 1, 1, 5, 0)), 0.0)
    assert resp is not None
    msg = ber.decode_v2c(resp)
    assert msg.pdu.tag == ber.RESPONSE and msg.pdu.request_id == 7
    # GETNEXT from the first OID reaches sysName, then endOfMibView.
    resp = agent.handle(_get(b"public", (1, 3, 6, 1, 2, 1, 1, 3, 0), ber.GETNEXT), 0.0)
    assert resp is not None and b"\x04\x01x" in resp
    resp = agent.handle(_get(b"public", (1, 3, 6, 1, 2, 1, 1, 5, 0), ber.GETNEXT), 0.0)
    assert resp is not None and resp.endswith(ber.END_OF_MIB_VIEW_VALUE)
    assert agent.handle(_get(b"wrong", (1, 3, 6, 1, 2, 1, 1, 5, 0)), 0.0) is None


def test_garbage_never_raises() -> None:
    agent = _agent()
    rng = random.Random(1)
    good = _get(b"public", (1, 3, 6, 1, 2, 1, 1, 5, 0), ber.GETBULK)
    v3_probe = bytes.fromhex(
        "303e020103301102042a8c1e2f020300ffe3040104020103041030"
        "0e0400020100020100040004000400301404000400a00e020433c1"
        "f7a50201000201003000"
    )
    samples = [b"", b"\x30", b"\x30\x84\xff\xff\xff\xff", b"\x30\x80" + b"\x00" * 10]
    for _ in range(3000):
        base = rng.choice([good, v3_probe])
        buf = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        samples.append(bytes(buf[: rng.randint(0, len(buf))] if rng.random() < 0.3 else buf))
        samples.append(rng.randbytes(rng.randint(0, 80)))
    for s in samples:
        resp = agent.handle(s, 0.0)
        assert resp is None or resp[0] == 0x30
    assert agent.dropped > 0
