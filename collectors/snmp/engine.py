"""The SNMP transport on gufo-snmp: sessions from inventory credentials, GET and bounded walks.

Every request is bounded by the poll deadline; GETBULK uses bounded max-repetitions and falls back to
smaller ones, then GETNEXT, when an agent times out instead of answering tooBig (big VLAN bitmaps).
"""

from __future__ import annotations

import asyncio
import functools
import operator
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
    SnmpDecodeError,
    SnmpError,
    SnmpVersion,
    User,
)
from gufo.snmp.aio.client import SnmpSession

try:  # gufo internals used by the fast GETBULK path; without them the public iterator is used
    from gufo.snmp._fast import GetIter as _GetIter

    GetIter: type[_GetIter] | None = _GetIter
except ImportError:  # pragma: no cover - depends on the installed gufo release
    GetIter = None

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
        self,
        session: SnmpSession,
        *,
        deadline: float,
        timeout_s: float,
        retries: int,
        max_repetitions: int,
        reps_hint: dict[str, int] | None = None,
    ) -> None:
        self.session = session
        self.deadline = deadline
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_repetitions = max_repetitions
        # Column -> the smaller max-repetitions a fallback found (kept per device by the caller).
        self.reps_hint = reps_hint
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

    async def walk(self, root: str, suffixes: bool = False) -> Walk:
        """All varbinds under `root`; shrink max-repetitions on timeout or oversized reply, finally GETNEXT.

        A smaller max-repetitions that worked is remembered in `reps_hint`, so such a column pays for
        the fallback once, not on every poll. With `suffixes`, keys are the OIDs below `root` (a
        column's row indexes) instead of whole OIDs.
        """
        hint = self.reps_hint
        reps = (
            min(hint.get(root, self.max_repetitions), self.max_repetitions) if hint else self.max_repetitions
        )
        while True:
            try:
                got = await self._walk_once(root, reps, suffixes)
                if hint is not None and reps < self.max_repetitions:
                    hint[root] = reps
                return got
            except TimeoutError:
                if reps <= 1:
                    raise
                # An agent that drops an oversized response looks like a dead one: retry smaller.
                self.stats.problems.append(f"{root}: timeout at max-repetitions {reps}")
            except SnmpDecodeError as exc:
                # gufo 0.13 reads replies into a 4 KiB buffer: a bigger one decodes as "incomplete".
                if reps <= 1 or str(exc) != "incomplete":
                    raise
                self.stats.problems.append(f"{root}: reply over 4 KiB at max-repetitions {reps}")
            reps = 1 if reps <= 5 else max(1, reps // 5)

    async def _walk_once(self, root: str, reps: int, suffixes: bool) -> Walk:
        sock = getattr(self.session, "_sock", None)
        fast = GetIter is not None and all(
            hasattr(sock, a) for a in ("send_get_bulk", "recv_get_bulk", "get_fd")
        )
        if reps > 1 and fast:
            return await self._bulk_walk(sock, root, reps, suffixes)
        got = await self._iter_walk(root, reps)
        if suffixes:
            cut = len(root) + 1
            return {oid[cut:]: value for oid, value in got.items()}
        return got

    async def _bulk_walk(self, sock: Any, root: str, reps: int, suffixes: bool = False) -> Walk:
        """GETBULK walk on gufo's socket, driven by the event loop's callbacks: one future per column.

        gufo's public iterator costs ~4 us of Python per varbind (one `__anext__` each) and registers
        the socket with the event loop per request; even one awaited future per request cost a task
        wake-up each. Here each reply is read and the next request sent from the socket's readable
        callback, and the coroutine wakes once, when the column is done or failed.
        """
        assert GetIter is not None  # checked by _walk_once
        self._check_deadline()
        walk = _ColumnWalk(self, sock, root, reps, suffixes, asyncio.get_running_loop())
        try:
            walk.start()
            out = await walk.fut
        finally:
            walk.close()
        self.stats.varbinds += len(out)
        return out

    async def _iter_walk(self, root: str, reps: int) -> Walk:
        """The same walk through gufo's public iterators (GETNEXT, and GETBULK without the fast path)."""
        it = self.session.getbulk(root, max_repetitions=reps) if reps > 1 else self.session.getnext(root)
        out: Walk = {}
        prefix = root + "."
        cut = len(prefix)
        # Inside the subtree only the suffix decides the order: compare suffixes, not whole OIDs.
        last: tuple[int, ...] = ()
        tries = 0
        self._check_deadline()
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


class _ColumnWalk:
    """One GETBULK column walk as a small state machine on the event loop (see Fetcher._bulk_walk).

    The socket stays registered with the loop for the whole walk, and one timer serves all its
    requests (re-armed only when it fires before the current request's end): a timer per request
    cost more than the request itself (asyncio's timer heap compares handles in Python). The result,
    the retries, the timeouts and the problems recorded are those of the coroutine loop it replaced.
    """

    def __init__(
        self,
        fetcher: Fetcher,
        sock: Any,
        root: str,
        reps: int,
        suffixes: bool,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        assert GetIter is not None
        self.f, self.sock, self.root, self.suffixes, self.loop = fetcher, sock, root, suffixes, loop
        self.ctx = GetIter(root, reps)
        self.fd = sock.get_fd()
        self.fut: asyncio.Future[Walk] = loop.create_future()
        self.out: Walk = {}
        self.cut = len(root) + 1
        self.last: tuple[int, ...] | int | None = None
        self.tries = 0
        self.end = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.reading = False
        self.sending: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Register the socket and send the first request."""
        self.loop.add_reader(self.fd, self._readable)
        self.reading = True
        self._send()

    def close(self) -> None:
        """Stop watching the socket (also when the poll is cancelled)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.reading:
            self.loop.remove_reader(self.fd)
            self.reading = False
        if self.sending is not None:
            self.sending.cancel()

    def _fail(self, exc: BaseException) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)
        self.close()

    def _send(self) -> None:
        f = self.f
        f.stats.requests += 1
        try:
            self.sock.send_get_bulk(self.ctx)
        except BlockingIOError:
            # Send buffer full: wait until writable, within the deadline (rare), then go on.
            self.sending = self.loop.create_task(self._send_later())
            return
        except BaseException as exc:  # handed to the awaiting coroutine
            self._fail(exc)
            return
        self._arm()

    async def _send_later(self) -> None:
        try:
            async with asyncio.timeout_at(self.f.deadline):
                await self.f.session._send(functools.partial(self.sock.send_get_bulk, self.ctx))
        except TimeoutError:
            self.sending = None
            self._fail(DeadlineExceeded())
            return
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the awaiting coroutine
            self.sending = None
            self._fail(exc)
            return
        self.sending = None
        self._arm()

    def _arm(self) -> None:
        end = self.end = min(self.loop.time() + self.f.timeout_s, self.f.deadline)
        if self.timer is not None and self.timer.when() > end:
            self.timer.cancel()
            self.timer = None
        if self.timer is None:
            self.timer = self.loop.call_at(end, self._alarm)

    def _alarm(self) -> None:
        self.timer = None
        if self.fut.done():
            return
        # asyncio runs timers up to its clock resolution early: allow for that, not more.
        if self.loop.time() + 1e-3 < self.end:
            self.timer = self.loop.call_at(self.end, self._alarm)
            return
        f = self.f
        if time.monotonic() >= f.deadline:
            self._fail(DeadlineExceeded())
            return
        f.stats.timeouts += 1
        self.tries += 1
        if self.tries > f.retries:
            self._fail(TimeoutError())
            return
        self._send()  # re-send the same request (ctx only advances on a reply)

    def _readable(self) -> None:
        if self.fut.done():
            return
        try:
            items = self.sock.recv_get_bulk(self.ctx)
        except BlockingIOError:
            return  # a stale reply (old request id) or a spurious wake-up
        except StopAsyncIteration:
            # gufo raises this when the reply starts at endOfMibView: the walked column is the last
            # thing the agent has.
            items = []
        except BaseException as exc:  # decoder errors go to the walk's fallbacks (Fetcher.walk)
            self._fail(exc)
            return
        if items:
            # None marks the end of the subtree or of the MIB view (gufo puts it last).
            end_of_walk = None in items
            if end_of_walk:
                items = items[: items.index(None)]
            if items:
                good, self.last, keys = _in_order(items, self.cut, self.last)
                if self.suffixes:
                    self.out.update(zip(keys[:good], map(_second, items[:good]), strict=True))
                else:
                    self.out.update(items[:good])
                if good < len(items):
                    # A broken agent that repeats or goes backwards would loop forever.
                    self.f.stats.problems.append(f"{self.root}: OID not increasing at {items[good][0]}")
                    end_of_walk = True
            if not end_of_walk:
                self._send()
                return
        self.fut.set_result(self.out)
        self.close()


_second = operator.itemgetter(1)


def _in_order(
    items: list[tuple[str, Value]], cut: int, last: tuple[int, ...] | int | None
) -> tuple[int, tuple[int, ...] | int | None, list[str]]:
    """How many leading items are strictly increasing (and after `last`), the last accepted key, and
    every item's OID below the walked root.

    gufo ends a walk itself when an OID leaves the subtree, so only the order needs checking. Table
    columns with one-number indexes (ifIndex) are compared as ints in C (map), not per varbind in
    Python; multi-part indexes fall back to tuples.
    """
    suffixes = [oid[cut:] for oid, _ in items]
    keys: list[Any]
    try:
        if isinstance(last, tuple):
            raise ValueError
        keys = list(map(int, suffixes))
    except ValueError:
        keys = [_oid_key(s) for s in suffixes]
        if isinstance(last, int):
            last = (last,)
    if last is not None:
        keys.insert(0, last)
    if all(map(operator.lt, keys, keys[1:])):
        return len(items), keys[-1], suffixes
    bad = list(map(operator.lt, keys, keys[1:])).index(
        False
    )  # keys[bad + 1] is the first item not greater than its predecessor
    good = bad if last is not None else bad + 1
    return good, keys[bad], suffixes


__all__ = ["DeadlineExceeded", "Fetcher", "SnmpError", "WeakCryptoRefused", "make_session"]
