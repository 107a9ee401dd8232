"""The writer's control socket: other processes (export, search, the API) append their audit records
through the one process that holds the store's writer lock.

Protocol: a Unix stream socket `<store>/control.sock` (mode 0600: the store owner and root), one JSON
request line, one JSON answer line. `{"op": "ping"}` answers the writer's PID and last seq;
`{"op": "audit", "record": {...}}` appends one `event_type=audit` record and answers its seq once it
is durable. Only audit records pass: the event type, app and receive time are set here, the peer's
uid and PID (SO_PEERCRED, from the kernel, not from the request) are added as flags.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import struct
import threading
from pathlib import Path
from typing import Any

from core import jsonline
from logstore.record import FIELDS, Record, new_record

SOCKET_NAME = "control.sock"
MAX_REQUEST = 64 * 1024
# What a client may set; seq, recv_ts, event_type, raw, flags and the device are the writer's.
CLIENT_FIELDS = frozenset({"user", "action", "outcome", "src_ip", "rule", "app", "msg", "host"})
TEXT_LIMIT = 4000


class AuditUnavailable(RuntimeError):
    """The audit record could not be written: no writer is running, or it refused the record."""


def socket_path(root: Path) -> Path:
    """Where the writer of `root` listens."""
    return Path(root) / SOCKET_NAME


def clean_audit(fields: dict[str, Any], peer: str | None = None) -> Record:
    """An audit record from client-given fields (unknown fields refused, text bounded)."""
    bad = sorted(set(fields) - CLIENT_FIELDS)
    if bad:
        raise ValueError(f"field {bad[0]!r} may not be set by a client")
    values: dict[str, Any] = {}
    for key, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise ValueError(f"field {key!r} must be text")
        values[key] = value[:TEXT_LIMIT] if isinstance(value, str) else None
    rec = new_record(event_type="audit", **{"app": "govnet", **values})
    if peer:
        rec["flags"].append(peer)
    assert set(rec) <= set(FIELDS)
    return rec


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.connection.settimeout(10)
        try:
            line = self.rfile.readline(MAX_REQUEST + 1)
            if len(line) > MAX_REQUEST:
                raise ValueError("request too long")
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("request must be an object")
            answer = self.server.answer(req, _peer(self.connection))
        except (ValueError, TypeError, KeyError) as exc:
            answer = {"ok": False, "error": str(exc)[:200]}
        except OSError as exc:  # the store could not write: say so, the client fails loudly
            answer = {"ok": False, "error": f"store write failed: {type(exc).__name__}"}
        with contextlib.suppress(OSError):
            self.wfile.write(json.dumps(answer).encode() + b"\n")


def _peer(sock: socket.socket) -> str | None:
    with contextlib.suppress(OSError):
        pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        return f"peer_uid:{uid},peer_pid:{pid}"
    return None


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    store: Any

    def answer(self, req: dict[str, Any], peer: str | None) -> dict[str, Any]:
        op = req.get("op")
        if op == "ping":
            return {"ok": True, "pid": os.getpid(), "last_seq": self.store.last_seq}
        if op == "audit":
            record = req.get("record")
            if not isinstance(record, dict):
                raise ValueError("audit needs a record object")
            seq = self.store.append(clean_audit(record, peer))
            return {"ok": True, "seq": seq}
        raise ValueError("unknown op")


class ControlServer:
    """Serves the control socket of a writer in a background thread (appends go through its lock)."""

    def __init__(self, store: Any) -> None:
        if not store.writable:
            raise ValueError("only the store's writer serves its control socket")
        self.store = store
        self.path = socket_path(store.root)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind (replacing a stale socket: holding the writer lock proves its owner is gone) and serve."""
        self.path.unlink(missing_ok=True)
        old = os.umask(0o177)
        try:
            server = _Server(str(self.path), _Handler)
        finally:
            os.umask(old)
        server.store = self.store
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="logstore-control", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and remove the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self.path.unlink(missing_ok=True)


def request(root: Path, req: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to the writer of `root`; raise AuditUnavailable when it cannot be done."""
    path = socket_path(root)
    try:
        answer = jsonline.call(path, req, timeout)
    except OSError as exc:
        raise AuditUnavailable(
            f"the writer of log store {root} is not reachable on {path} ({type(exc).__name__}); "
            "is govnet syslog (or govnet run) running?"
        ) from None
    except ValueError:
        raise AuditUnavailable("the log store writer gave no answer") from None
    if not answer.get("ok"):
        raise AuditUnavailable(f"the log store writer refused: {answer.get('error')}")
    return answer


def append_audit(store: Any, fields: dict[str, Any]) -> int:
    """Append an audit record: directly when `store` is the writer, else through the writer's socket."""
    if store.writable:
        seq: int = store.append(clean_audit(fields, "writer"))
        return seq
    return int(request(store.root, {"op": "audit", "record": fields})["seq"])
