"""Child process for the bench: walk IF-MIB columns with pysnmp 7.1 at its best and report its own CPU.

pysnmp's cheapest path: v1arch (no SNMP engine), `lookupMib=False` (no MIB resolution), and all columns
in one GETBULK per round trip.  Spec on stdin: {"address", "columns": [oids], "polls"}; community from
$GVT6_BENCH_COMMUNITY.  Prints {"polls", "varbinds", "cpu_s", "wall_s"}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from pysnmp.hlapi.v1arch.asyncio import (
    CommunityData,
    ObjectIdentity,
    ObjectType,
    SnmpDispatcher,
    UdpTransportTarget,
    bulk_cmd,
)
from pysnmp.proto.rfc1905 import EndOfMibView


async def _walk(disp: Any, auth: Any, target: Any, columns: list[str]) -> int:
    """Walk all `columns` in lock-step; return the number of var-binds received inside them."""
    roots = [tuple(int(x) for x in c.split(".")) for c in columns]
    cursor = list(roots)
    active = list(range(len(roots)))
    received = 0
    while active:
        err, status, _idx, vbs = await bulk_cmd(
            disp,
            auth,
            target,
            0,
            25,
            *(ObjectType(ObjectIdentity(cursor[i])) for i in active),
            lookupMib=False,
        )
        if err or status:
            raise RuntimeError(f"pysnmp walk failed: {err or status.prettyPrint()}")
        still: list[int] = []
        width = len(active)
        for pos, col in enumerate(active):
            done = False
            for oid, value in vbs[pos::width]:
                t = tuple(oid)
                if isinstance(value, EndOfMibView) or t[: len(roots[col])] != roots[col]:
                    done = True
                    break
                cursor[col] = t
                received += 1
            if not done and vbs[pos::width]:
                still.append(col)
        active = still
    return received


async def _main(spec: dict[str, Any]) -> dict[str, Any]:
    disp = SnmpDispatcher()
    auth = CommunityData(os.environ["GVT6_BENCH_COMMUNITY"])
    target = await UdpTransportTarget.create((spec["address"], 161), timeout=5, retries=1)
    await _walk(disp, auth, target, spec["columns"])  # warm-up
    varbinds = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(int(spec["polls"])):
        varbinds += await _walk(disp, auth, target, spec["columns"])
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    disp.transport_dispatcher.close_dispatcher()
    return {"polls": int(spec["polls"]), "varbinds": varbinds, "cpu_s": cpu, "wall_s": wall}


def main() -> None:
    """Entry point: spec on stdin, result on stdout."""
    print(json.dumps(asyncio.run(_main(json.load(sys.stdin)))))


if __name__ == "__main__":
    main()
