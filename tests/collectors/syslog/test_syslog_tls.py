"""Syslog over TLS (RFC 5425) with openssl-made certificates; `openssl s_client` is the real sender."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import subprocess
from pathlib import Path

from collectors.syslog.formats import load_formats
from collectors.syslog.receiver import Ingest, server_tls_context, start_receiver
from logstore.store import LogStore
from tests.support.require import require_cmd

HOST = "127.38.0.1"


def make_cert(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "server.pem", folder / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=govnet-syslog",
         "-addext", f"subjectAltName=IP:{HOST}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_tls_octet_counted_frames_from_openssl(tmp_path: Path) -> None:
    require_cmd("openssl")
    cert, key = make_cert(tmp_path)
    frames = [b"<134>1 2026-03-12T10:00:00Z fw app - - - tls line %d" % i for i in range(50)]
    frames.append("<134>Mar 12 10:46:04 af fwlog: 日志类型:服务控制或应用控制, 系统动作:拒绝".encode("gbk"))
    payload = b"".join(str(len(f)).encode() + b" " + f for f in frames)
    store = LogStore(tmp_path / "store")

    async def main() -> None:
        ingest = Ingest(store, load_formats(), {})
        rx = await start_receiver(ingest, HOST, None, None, tls_port=0,
                                  tls_context=server_tls_context(str(cert), str(key)))  # fmt: skip
        try:
            proc = await asyncio.create_subprocess_exec(
                "openssl", "s_client", "-quiet", "-no_ign_eof", "-connect", f"{HOST}:{rx.tls_port}",
                "-CAfile", str(cert), "-verify_return_error",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert proc.stdin is not None
            proc.stdin.write(payload)
            await proc.stdin.drain()
            for _ in range(500):
                if ingest.stats.received_total >= len(frames):
                    break
                await asyncio.sleep(0.02)
            proc.stdin.close()
            await asyncio.wait_for(proc.wait(), 20)
            await ingest.drain()
        finally:
            await rx.close()

    try:
        asyncio.run(main())
        recs = [rec for rec, _ in store.iter_records()]
        assert [base64.b64decode(r["raw"]) for r in recs] == frames
        assert all(r["transport"] == "tls" for r in recs)
        assert recs[-1]["encoding"] == "gbk" and recs[-1]["event_type"] == "policy_deny"
        assert store.verify() == []
    finally:
        store.close()


def test_plaintext_client_on_tls_port_gets_nothing_stored(tmp_path: Path) -> None:
    require_cmd("openssl")
    cert, key = make_cert(tmp_path)
    store = LogStore(tmp_path / "store")

    async def main() -> None:
        ingest = Ingest(store, load_formats(), {})
        rx = await start_receiver(ingest, HOST, None, None, tls_port=0,
                                  tls_context=server_tls_context(str(cert), str(key)))  # fmt: skip
        try:
            reader, writer = await asyncio.open_connection(HOST, rx.tls_port)
            writer.write(b"5 hello")
            await writer.drain()
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(), 10) == b""  # handshake fails: closed
            writer.close()
            await asyncio.sleep(0.1)
            await ingest.drain()
        finally:
            await rx.close()

    try:
        asyncio.run(main())
        assert [rec for rec, _ in store.iter_records()] == []
    finally:
        store.close()
