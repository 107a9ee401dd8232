"""The SNMP transport on gufo-snmp: sessions from inventory credentials, GET and bounded walks.

Every request is bounded by the poll deadline; GETBULK uses bounded max-repetitions and falls back to
smaller ones, then GETNEXT, when an agent times out instead of answering tooBig (big VLAN bitmaps).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from gufo.snmp import (
    Aes128Key,
    Aes192Key,
    Aes256Key,
    DesKey,
    Md5Key,
    Sha1Key,
    Sha224Key,
    Sha256Key,
    Sha384Key,
    Sha512Key,
    SnmpError,
    SnmpVersion,
    User,
)
from gufo.snmp.aio.client import SnmpSession

from collectors.snmp.evaluate import Value, Walk
from inventory.model import WEAK_AUTH, WEAK_PRIV, SnmpV2c, SnmpV3

T = TypeVar("T")

_AUTH = {
    "md5": Md5Key,
    "sha": Sha1Key,
    "sha224": Sha224Key,
    "sha256": Sha256Key,
    "sha384": Sha384Key,
    "sha512": Sha512Key,
}
_PRIV = {"des": DesKey, "aes": Aes128Key, "aes128": Aes128Key, "aes192": Aes192Key, "aes256": Aes256Key}


class DeadlineExceeded(Exception):
    """The poll ran out of its time budget."""


class WeakCryptoRefused(ValueError):
    """SNMPv3 MD5/DES requested without allow_weak_crypto."""


def make_session(
    address: str, creds: SnmpV2c | SnmpV3, timeout_s: float, max_repetitions: int
) -> SnmpSession:
    """A gufo session; secrets are resolved here and never stored elsewhere or logged."""
    if isinstance(creds, SnmpV2c):
        return SnmpSession(
            addr=address,
            port=creds.port,
            community=creds.community.resolve(),
            version=SnmpVersion.v2c,
            timeout=timeout_s,
            max_repetitions=max_repetitions,
        )
    weak = {creds.auth_protocol} & WEAK_AUTH | {creds.priv_protocol} & WEAK_PRIV
    if weak and not creds.allow_weak_crypto:
        # The model refuses this too; the engine refuses again so no other path can slip MD5/DES in.
        raise WeakCryptoRefused(
            f"SNMPv3 {'/'.join(sorted(str(w) for w in weak))} refused without allow_weak_crypto"
        )
    if creds.auth_key is None or creds.priv_key is None or creds.priv_protocol is None:
        raise ValueError("SNMPv3 requires authPriv")
    user = User(
        creds.user,
        auth_key=_AUTH[creds.auth_protocol](creds.auth_key.resolve().encode()),
        priv_key=_PRIV[creds.priv_protocol](creds.priv_key.resolve().encode()),
    )
    return SnmpSession(
        addr=address,
        port=creds.port,
        user=user,
        version=SnmpVersion.v3,
        timeout=timeout_s,
        max_repetitions=max_repetitions,
    )


def _oid_key(oid: str) -> tuple[int, ...]:
    return tuple(map(int, oid.split(".")))


@dataclass(slots=True)
class Stats:
    """Counts for one poll."""

    varbinds: int = 0
    timeouts: int = 0
    requests: int = 0
    problems: list[str] = field(default_factory=list)


class Fetcher:
    """Runs the requests of one poll against one session under one deadline (monotonic seconds)."""

    def __init__(
        self, session: SnmpSession, *, deadline: float, timeout_s: float, retries: int, max_repetitions: int
    ) -> None:
        self.session = session
        self.deadline = deadline
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_repetitions = max_repetitions
        self.stats = Stats()

    def _check_deadline(self) -> None:
        if time.monotonic() >= self.deadline:
            raise DeadlineExceeded

    async def refresh(self) -> None:
        """SNMPv3 engine discovery (no-op for v2c), bounded like any request."""
        await self._request(self.session.refresh)

    async def _request(self, fn: Callable[[], Awaitable[T]]) -> T:
        """One request with retries: gufo bounds each try by timeout_s, the deadline bounds them all."""
        self._check_deadline()
        try:
            async with asyncio.timeout_at(self.deadline):
                for attempt in range(self.retries + 1):
                    self.stats.requests += 1
                    try:
                        return await fn()
                    except TimeoutError:
                        self.stats.timeouts += 1
                        if attempt == self.retries:
                            raise
        except TimeoutError:
            self._check_deadline()
            raise
        raise AssertionError("unreachable")

    async def get_many(self, oids: Iterable[str], chunk: int = 16) -> Walk:
        """GET scalars in chunks; absent objects (noSuchObject/noSuchInstance) are simply missing."""
        out: Walk = {}
        todo = list(oids)
        for i in range(0, len(todo), chunk):
            part = todo[i : i + chunk]
            res: dict[str, Value] = dict(await self._request(functools.partial(self.session.get_many, part)))
            out.update(res)
        self.stats.varbinds += len(out)
        return out

    async def walk(self, root: str) -> Walk:
        """All varbinds under `root`; shrink max-repetitions on timeout, finally GETNEXT."""
        reps = self.max_repetitions
        while True:
            try:
                return await self._walk_once(root, reps)
            except TimeoutError:
                if reps <= 1:
                    raise
                # An agent that drops an oversized response looks like a dead one: retry smaller.
                self.stats.problems.append(f"{root}: timeout at max-repetitions {reps}")
                reps = 1 if reps <= 5 else max(1, reps // 5)

    async def _walk_once(self, root: str, reps: int) -> Walk:
        it = self.session.getbulk(root, max_repetitions=reps) if reps > 1 else self.session.getnext(root)
        out: Walk = {}
        prefix = root + "."
        cut = len(prefix)
        # Inside the subtree only the suffix decides the order: compare suffixes, not whole OIDs.
        last: tuple[int, ...] = ()
        tries = 0
        self._check_deadline()
        # One deadline for the whole walk; the per-request timeout is gufo's own (cheap per varbind:
        # buffered GETBULK items need no timer).
        try:
            async with asyncio.timeout_at(self.deadline):
                while True:
                    try:
                        oid, value = await it.__anext__()
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        self.stats.timeouts += 1
                        tries += 1
                        if tries > self.retries:
                            raise
                        continue  # the iterator re-sends the same request
                    if not oid.startswith(prefix):
                        break
                    key = _oid_key(oid[cut:])
                    if key <= last:
                        # A broken agent that repeats or goes backwards would loop forever.
                        self.stats.problems.append(f"{root}: OID not increasing at {oid}")
                        break
                    last = key
                    out[oid] = value
        except TimeoutError:
            self._check_deadline()
            raise
        self.stats.varbinds += len(out)
        return out


__all__ = ["DeadlineExceeded", "Fetcher", "SnmpError", "WeakCryptoRefused", "make_session"]
