"""SnmpCollector and the gufo-snmp engine against a real net-snmp snmpd on 127.22.x.x.

Covers v2c, v3 authPriv (SHA-256/AES-128), wrong keys, a dead agent bounded by the deadline, noSuch
handling, the max-repetitions fallback when an agent drops big responses, a looping agent and garbage.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping
from typing import Any, TypeVar

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from collectors.snmp import SnmpCollector
from collectors.snmp.engine import Fetcher, WeakCryptoRefused, make_session
from collectors.snmp.netsnmpd import NetSnmpd, free_udp_port
from collectors.snmp.profile import default_profiles
from inventory.model import Inventory, SnmpV3
from tests.support.require import require_cmd

T = TypeVar("T")

HOST = "127.22.0.1"
SYS_OR_DESCR = "1.3.6.1.2.1.1.9.1.3"  # sysORDescr: ~10 rows of long text in any net-snmp


@pytest.fixture(scope="module")
def agent() -> Iterator[NetSnmpd]:
    require_cmd("snmpd")
    a = NetSnmpd(HOST)
    a.start()
    try:
        yield a
    finally:
        a.stop()


@pytest.fixture
def secrets(agent: NetSnmpd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVNET_T_COMM", agent.community)
    monkeypatch.setenv("GOVNET_T_AUTH", agent.auth_key)
    monkeypatch.setenv("GOVNET_T_PRIV", agent.priv_key)
    monkeypatch.setenv("GOVNET_T_BADPRIV", "not-the-key-123")


def inventory(address: str, port: int, snmp: Mapping[str, object], vendor: str = "linux") -> Inventory:
    return Inventory.model_validate(
        {
            "sites": [{"name": "dc"}],
            "devices": [
                {
                    "name": "h1",
                    "site": "dc",
                    "role": "server",
                    "vendor": vendor,
                    "address": address,
                    "snmp": {**snmp, "port": port},
                }
            ],
        }
    )


V2C = {"version": "2c", "community": "env:GOVNET_T_COMM"}


def v3(priv: str = "env:GOVNET_T_PRIV") -> dict[str, object]:
    return {
        "version": "3",
        "user": "govnet",
        "auth_protocol": "sha256",
        "auth_key": "env:GOVNET_T_AUTH",
        "priv_protocol": "aes128",
        "priv_key": priv,
    }


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.mark.parametrize("creds", [V2C, v3()], ids=["v2c", "v3-sha256-aes128"])
def test_poll_real_agent(agent: NetSnmpd, secrets: None, creds: dict[str, object]) -> None:
    inv = inventory(HOST, agent.port, creds)
    dev = inv.devices[0]
    col = SnmpCollector(timeout_s=1.0)
    r1 = run(col.poll(inv, dev, 1000.0))
    assert r1.ok, r1.error
    assert r1.varbinds > 20 and r1.timeouts == 0
    by = {s.metric: s for s in r1.samples}
    assert by["govnet_uptime_seconds"].value > 0
    info = dict(by["govnet_device_info"].labels)
    assert info["sysobjectid"].startswith("1.3.6.1.4.1.8072.3.2") and info["sysdescr"]
    for s in r1.samples:
        labels = dict(s.labels)
        assert list(s.labels) == sorted(s.labels)
        assert (labels["device"], labels["site"], labels["role"], labels["vendor"]) == (
            "h1",
            "dc",
            "server",
            "linux",
        )
        assert s.timestamp == 1000.0
    lo = [
        s for s in r1.samples if s.metric == "govnet_if_in_octets_total" and dict(s.labels)["ifname"] == "lo"
    ]
    assert len(lo) == 1 and lo[0].type == "counter"
    # Traffic on lo between two polls: the exported counter grows and never goes backwards.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(50):
            sender.sendto(b"x" * 1000, (HOST, free_udp_port(HOST)))
    # net-snmp caches interface statistics for a few seconds: poll until the new traffic shows.
    for attempt in range(40):
        r2 = run(col.poll(inv, dev, 1030.0 + attempt))
        lo2 = [
            s
            for s in r2.samples
            if s.metric == "govnet_if_in_octets_total" and dict(s.labels)["ifname"] == "lo"
        ]
        if lo2[0].value != lo[0].value:
            break
        time.sleep(0.25)
    assert lo2[0].value >= lo[0].value + 50_000
    assert not any(s.metric in ("govnet_up", "govnet_poll_duration_seconds") for s in r2.samples)


def test_v3_wrong_key_fails_without_leaking(agent: NetSnmpd, secrets: None) -> None:
    inv = inventory(HOST, agent.port, v3("env:GOVNET_T_BADPRIV"))
    r = run(SnmpCollector(timeout_s=0.5, retries=0).poll(inv, inv.devices[0], 0.0, deadline_s=3))
    assert not r.ok and r.error
    assert "not-the-key-123" not in r.error and agent.auth_key not in r.error


def test_weak_crypto_refused_by_engine(agent: NetSnmpd, secrets: None) -> None:
    # Bypass the model's validation: the engine must refuse on its own.
    weak = SnmpV3.model_construct(
        user="govnet",
        auth_protocol="md5",
        auth_key=None,
        priv_protocol="des",
        priv_key=None,
        port=agent.port,
        allow_weak_crypto=False,
        version="3",
        context="",
    )
    with pytest.raises(WeakCryptoRefused):
        make_session(HOST, weak, 1.0, 10)


@contextlib.contextmanager
def udp_responder(handler) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """A UDP server on 127.22.0.2 whose handler maps a request datagram to a reply (or None)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.22.0.2", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = handler(data)
            if reply:
                sock.sendto(reply, peer)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        t.join(2)
        sock.close()


def test_dead_agent_times_out_within_deadline(secrets: None) -> None:
    with udp_responder(lambda _d: None) as port:  # receives, never answers
        inv = inventory("127.22.0.2", port, V2C)
        t0 = time.monotonic()
        r = run(SnmpCollector(timeout_s=0.4, retries=10).poll(inv, inv.devices[0], 0.0, deadline_s=1.5))
        elapsed = time.monotonic() - t0
    assert not r.ok and r.error and r.timeouts >= 1
    # 10 retries of 0.4 s would take 4.4 s; the 1.5 s deadline cuts them (bound loose for a shared machine).
    assert elapsed < 4.0, "the poll ran past its deadline"


def test_garbage_agent_fails_cleanly(secrets: None) -> None:
    """Random and truncated BER replies: every poll returns a failed result, none raises."""
    rng = random.Random(1234)
    payloads = [rng.randbytes(rng.randint(1, 200)) for _ in range(12)]
    payloads += [b"\x30\x82\xff\xff", b"\x30\x03\x02\x01\x01", b"\x30\x0b\x02\x01\x01\x04\x06public"]
    replies = iter(payloads)
    with udp_responder(lambda _d: next(replies, b"\x00")) as port:
        inv = inventory("127.22.0.2", port, V2C)
        col = SnmpCollector(timeout_s=0.2, retries=0)
        for _ in payloads:
            r = run(col.poll(inv, inv.devices[0], 0.0, deadline_s=2))
            assert not r.ok and r.error


def _looping_reply(data: bytes) -> bytes | None:
    """A broken agent: every GETNEXT/GETBULK answers with the same OID inside the walked subtree."""
    p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    msg, _ = decoder.decode(data, asn1Spec=p.Message())
    req = p.apiMessage.get_pdu(msg)
    rsp_msg = p.apiMessage.get_response(msg)
    rsp = p.apiMessage.get_pdu(rsp_msg)
    p.apiPDU.set_varbinds(rsp, [(p.ObjectIdentifier("1.3.6.1.2.1.2.2.1.2.1"), p.OctetString(b"again"))])
    p.apiPDU.set_request_id(rsp, p.apiPDU.get_request_id(req))
    return bytes(encoder.encode(rsp_msg))


def test_non_increasing_oids_stop_the_walk() -> None:
    async def go() -> tuple[dict[str, object], list[str]]:
        with udp_responder(_looping_reply) as port:
            from inventory.model import SnmpV2c

            os.environ["GOVNET_T_LOOP"] = "public"
            s = make_session("127.22.0.2", SnmpV2c(community="env:GOVNET_T_LOOP", port=port), 0.5, 10)
            f = Fetcher(s, deadline=time.monotonic() + 5, timeout_s=0.5, retries=0, max_repetitions=10)
            walk = await f.walk("1.3.6.1.2.1.2.2.1.2")
            return dict(walk), f.stats.problems

    walk, problems = run(go())
    assert walk == {"1.3.6.1.2.1.2.2.1.2.1": b"again"}
    assert problems and "not increasing" in problems[0]


@contextlib.contextmanager
def dropping_proxy(target_port: int, max_reply: int) -> Iterator[tuple[int, list[int]]]:
    """Forward to the real agent, silently dropping replies bigger than `max_reply` bytes
    (how some agents and snmpsim behave when a GETBULK answer exceeds a datagram)."""
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.bind(("127.22.0.3", 0))
    up.settimeout(1.0)
    dropped: list[int] = []

    def handler(data: bytes) -> bytes | None:
        up.sendto(data, (HOST, target_port))
        try:
            reply, _ = up.recvfrom(65535)
        except TimeoutError:
            return None
        if len(reply) > max_reply:
            dropped.append(len(reply))
            return None
        return reply

    try:
        with udp_responder(handler) as port:
            yield port, dropped
    finally:
        up.close()


def test_bulk_fallback_when_agent_drops_big_responses(agent: NetSnmpd, secrets: None) -> None:
    from inventory.model import SnmpV2c

    creds = SnmpV2c(community="env:GOVNET_T_COMM", port=agent.port)

    async def walk_via(port: int | None) -> tuple[dict[str, object], list[str]]:
        c = creds if port is None else creds.model_copy(update={"port": port})
        addr = HOST if port is None else "127.22.0.2"
        f = Fetcher(
            make_session(addr, c, 0.3, 25),
            deadline=time.monotonic() + 20,
            timeout_s=0.3,
            retries=0,
            max_repetitions=25,
        )
        return dict(await f.walk(SYS_OR_DESCR)), f.stats.problems

    direct, _ = run(walk_via(None))
    assert len(direct) >= 5
    with dropping_proxy(agent.port, max_reply=250) as (port, dropped):
        via, problems = run(walk_via(port))
    assert dropped, "the proxy should have dropped the first (big) responses"
    assert problems and "max-repetitions 25" in problems[0]
    assert via == direct


def test_missing_objects_are_absent_not_errors(agent: NetSnmpd, secrets: None) -> None:
    """A profile whose vendor MIBs the agent lacks (noSuchObject / end of subtree) still polls fine."""
    inv = inventory(HOST, agent.port, V2C, vendor="huawei")
    col = SnmpCollector(timeout_s=1.0)
    r = run(col.poll(inv, inv.devices[0], 0.0))
    assert r.ok, r.error
    # net-snmp's sysObjectID selects the linux profile even though the inventory says huawei.
    assert any(s.metric == "govnet_if_in_octets_total" for s in r.samples)

    async def go() -> tuple[dict[str, object], dict[str, object]]:
        st = col._state["h1"]
        f = Fetcher(st.session, deadline=time.monotonic() + 5, timeout_s=1.0, retries=0, max_repetitions=25)
        scal = await f.get_many(["1.3.6.1.4.1.2011.5.25.31.1.1.1.1.5.0", "1.3.6.1.2.1.1.5.0"])
        col_walk = await f.walk(default_profiles()["huawei"].metrics[-1].alternatives[0][0].oid)
        return dict(scal), dict(col_walk)

    scal, col_walk = run(go())
    assert list(scal) == ["1.3.6.1.2.1.1.5.0"] and col_walk == {}


def test_empty_columns_skipped_between_full_polls(agent: NetSnmpd, secrets: None) -> None:
    """Profile columns the agent lacks are not re-requested every poll, and no data is lost by it."""
    from collectors.snmp.collector import EMPTY_RECHECK_POLLS

    inv = inventory(HOST, agent.port, V2C)
    dev = inv.devices[0]
    col = SnmpCollector(timeout_s=1.0)
    r1 = run(col.poll(inv, dev, 1000.0))
    assert r1.ok, r1.error
    st = col._state[dev.name]
    assert st.empty_columns, "net-snmp lacks some linux-profile columns (e.g. lm-sensors in a container)"
    r2 = run(col.poll(inv, dev, 1030.0))
    assert r2.ok and st.polls_since_full == 2
    assert {(s.metric, s.labels) for s in r2.samples} == {(s.metric, s.labels) for s in r1.samples}
    st.polls_since_full = EMPTY_RECHECK_POLLS
    r3 = run(col.poll(inv, dev, 1060.0))
    assert r3.ok and st.polls_since_full == 1  # a full poll re-probed the empty columns
