"""Notifiers against real receivers: an HTTP server on loopback (webhook, WeCom, DingTalk) and aiosmtpd.

Retries on 5xx/429, none on 4xx, fallback channel, signed DingTalk, STARTTLS+AUTH mail, and
durability: a process killed with SIGKILL after paging, acknowledging and silencing restarts
without a duplicate page and with every ack and silence.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import hashlib
import hmac
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from alerts.engine import Engine, Notification
from alerts.notify.alertmanager import AlertmanagerNotifier, SmsNotifier
from alerts.notify.base import classify_status
from alerts.notify.dispatch import Dispatcher
from alerts.notify.email import EmailNotifier
from alerts.notify.robots import DingTalkNotifier, WeComNotifier
from alerts.notify.webhook import WebhookNotifier
from alerts.persist import StateDB
from alerts.rules import DEFAULT_RULES, load_rules
from core.samples import Sample, labels_of
from core.secrets import Secret
from tests.support.paths import ROOT
from tests.support.require import require_cmd

HOST = "127.25.0.1"
RULES = load_rules(DEFAULT_RULES)


class Receiver:
    """A real HTTP server answering with scripted statuses/bodies and recording accepted requests."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, Any]]] = []  # consumed first; then 200 {"errcode": 0}
        self.requests: list[tuple[str, dict[str, Any], int]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, answer = owner.script.pop(0) if owner.script else (200, {"errcode": 0})
                owner.requests.append((self.path, body, status))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self) -> list[dict[str, Any]]:
        return [b for _, b, s in self.requests if s == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("mail.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    client = ssl.create_default_context(cafile=str(tmp / "cert.pem"))
    client.check_hostname = False  # the server is reached by IP; the certificate itself is verified
    return server, client


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Mailbox, EmailNotifier]]:
    server_ctx, client_ctx = _self_signed(tmp_path)
    box = Mailbox()

    def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == b"govnet" and data.password == b"s3cret-pw"
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    port = _free_port()
    controller = Controller(
        box, hostname=HOST, port=port, tls_context=server_ctx, require_starttls=True, authenticator=auth,
        auth_required=True,
    )  # fmt: skip
    controller.start()
    monkeypatch.setenv("GOVNET_TEST_SMTP_PW", "s3cret-pw")
    notifier = EmailNotifier(
        "email", HOST, port, "govnet@test", ("noc@test",), starttls=True, username="govnet",
        password=Secret("env:GOVNET_TEST_SMTP_PW"), people={"王工": "wang@test"}, tls_context=client_ctx,
    )  # fmt: skip
    try:
        yield box, notifier
    finally:
        controller.stop()


def ups_notification(tmp_path: Path, db: StateDB | None = None) -> tuple[Engine, list[Notification]]:
    engine = Engine(RULES, db=db)
    lab = labels_of(device="ups-1", site="idc", role="ups", vendor="generic")
    out: list[Notification] = []
    for t in range(0, 120, 30):
        engine.publish("ups-1", [Sample("govnet_ups_on_battery", lab, 1.0, t)])
        out += engine.evaluate(t)
    assert [n.kind for n in out] == ["firing"]
    return engine, out


def test_status_classification_follows_alertmanager() -> None:
    assert classify_status(200) == (False, None)
    assert classify_status(503) == (True, "HTTP 503")
    assert classify_status(429) == (True, "HTTP 429")
    assert classify_status(400) == (False, "HTTP 400")
    assert classify_status(404) == (False, "HTTP 404")


def test_webhook_503_for_a_while_then_exactly_one_delivery(tmp_path: Path, receiver: Receiver) -> None:
    db = StateDB(tmp_path / "state.db")
    ups_notification(tmp_path, db)
    receiver.script = [(503, {}), (503, {}), (429, {}), (502, {})]
    disp = Dispatcher(db, {"hook": WebhookNotifier("hook", receiver.url + "/alerts")}, ["hook"])
    for t in range(100, 400, 5):
        disp.run_due(float(t))
    assert [s for _, _, s in receiver.requests] == [503, 503, 429, 502, 200]
    (body,) = receiver.accepted()
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["alerts"][0]["labels"]["alertname"] == "UpsOnBattery"
    assert body["govnet"]["level"] == "III" and "黄色预警" in body["govnet"]["text"]
    assert disp.counters.retried == 4 and disp.counters.sent == 1


def test_webhook_400_is_not_retried_and_falls_back_to_email(
    tmp_path: Path, receiver: Receiver, smtp: tuple[Mailbox, EmailNotifier]
) -> None:
    box, mailer = smtp
    db = StateDB(tmp_path / "state.db")
    _, (note,) = ups_notification(tmp_path, db)
    receiver.script = [(400, {"error": "bad"})]
    disp = Dispatcher(db, {"hook": WebhookNotifier("hook", receiver.url), "email": mailer}, ["hook"], "email")
    for t in range(100, 400, 5):
        disp.run_due(float(t))
    assert [s for _, _, s in receiver.requests] == [400]
    assert disp.counters.rejected == 1 and disp.counters.fallback == 1
    assert disp.status(note.dedup_key) == {"hook": "failed", "email": "sent"}
    (mail,) = box.messages
    assert "UPS ups-1" in str(email.header.make_header(email.header.decode_header(mail["Subject"])))
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes) and "处置第一步" in body.decode("utf-8")


def test_email_names_the_on_call_person_and_bad_password_is_permanent(
    tmp_path: Path, smtp: tuple[Mailbox, EmailNotifier], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, mailer = smtp
    _, (note,) = ups_notification(tmp_path)
    note = Notification(**{**note.__dict__, "recipients": ("王工",)})
    assert mailer.send(note, 0) == (False, None)
    assert box.messages[0]["To"] == "noc@test, wang@test"
    monkeypatch.setenv("GOVNET_TEST_SMTP_PW", "wrong")
    retry, error = mailer.send(note, 0)
    assert (retry, error) == (False, "SMTP 535") and "wrong" not in str(error)


def test_wecom_markdown_and_rate_limit_errcode(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVNET_TEST_WECOM", receiver.url + "/cgi-bin/webhook/send?key=k1")
    _, (note,) = ups_notification(tmp_path)
    bot = WeComNotifier("wecom", Secret("env:GOVNET_TEST_WECOM"))
    receiver.script = [
        (200, {"errcode": 45009, "errmsg": "api freq out of limit"}),
        (200, {"errcode": 93000}),
    ]
    assert bot.send(note, 0) == (True, "robot errcode 45009")
    assert bot.send(note, 0) == (False, "robot errcode 93000")
    assert bot.send(note, 0) == (False, None)
    path, body, _ = receiver.requests[-1]
    assert path.endswith("key=k1") and body["msgtype"] == "markdown"
    assert (
        '<font color="#e6c700">' in body["markdown"]["content"] and "UPS ups-1" in body["markdown"]["content"]
    )


def test_dingtalk_signature_verifies(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVNET_TEST_DING_URL", receiver.url + "/robot/send?access_token=t")
    monkeypatch.setenv("GOVNET_TEST_DING_SECRET", "SEC0123")
    _, (note,) = ups_notification(tmp_path)
    bot = DingTalkNotifier("ding", Secret("env:GOVNET_TEST_DING_URL"), Secret("env:GOVNET_TEST_DING_SECRET"))
    assert bot.send(note, 1_700_000_000.5) == (False, None)
    path, body, _ = receiver.requests[0]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    assert query["timestamp"] == ["1700000000500"]
    mac = hmac.new(b"SEC0123", b"1700000000500\nSEC0123", hashlib.sha256).digest()
    assert query["sign"] == [base64.b64encode(mac).decode()]
    assert body["msgtype"] == "markdown" and body["markdown"]["title"].startswith("【告警】")


CHILD = r"""
import os, sys, time
from pathlib import Path
from alerts.engine import Engine
from alerts.notify.dispatch import Dispatcher
from alerts.notify.webhook import WebhookNotifier
from alerts.persist import StateDB
from alerts.rules import DEFAULT_RULES, load_rules
from alerts.silences import Silence, parse_matcher
from core.samples import Sample, labels_of

db = StateDB(Path(sys.argv[1]))
engine = Engine(load_rules(DEFAULT_RULES), db=db)
disp = Dispatcher(db, {"hook": WebhookNotifier("hook", sys.argv[2])}, ["hook"])
for dev in ("ups-1", "ups-2"):
    lab = labels_of(device=dev, site="idc", role="ups", vendor="generic")
    for t in range(0, 120, 30):
        engine.publish(dev, [Sample("govnet_ups_on_battery", lab, 1.0, t)])
        engine.evaluate(t)
disp.run_due(120)
inc = sorted(engine.incidents)[0]
engine.acknowledge(inc, "刘工", "已联系供电局", 130)
engine.add_silence(Silence("s1", (parse_matcher('device="ups-3"'),), 0, 9999, "张三", "更换电池"))
print("ready", flush=True)
time.sleep(60)
"""


def test_kill_9_after_pages_acks_and_silences_restarts_without_duplicates(
    tmp_path: Path, receiver: Receiver
) -> None:
    path = tmp_path / "state.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), receiver.url], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert len(receiver.accepted()) == 2  # one page per UPS
    db = StateDB(path)
    engine = Engine(RULES, db=db)
    disp = Dispatcher(db, {"hook": WebhookNotifier("hook", receiver.url)}, ["hook"])
    acked = [i for i in engine.incidents.values() if i.acked_by]
    assert [(i.acked_by, i.ack_comment) for i in acked] == [("刘工", "已联系供电局")]
    assert engine.silences.items["s1"].comment == "更换电池"
    out = []
    for t in range(150, 400, 30):
        for dev in ("ups-1", "ups-2"):
            lab = labels_of(device=dev, site="idc", role="ups", vendor="generic")
            engine.publish(dev, [Sample("govnet_ups_on_battery", lab, 1.0 if t < 300 else 0.0, t)])
        out += engine.evaluate(t)
        disp.run_due(t)
    assert sorted(n.kind for n in out) == ["resolved", "resolved"]  # no second firing page
    statuses = [b["status"] for b in receiver.accepted()]
    assert statuses == ["firing", "firing", "resolved", "resolved"]
    resolved_acked = [b for b in receiver.accepted() if "已确认：刘工" in b["govnet"]["text"]]
    assert len(resolved_acked) == 1 and resolved_acked[0]["status"] == "resolved"


def _every_http_notifier(url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("GOVNET_TEST_URL", url + "/x")
    monkeypatch.setenv("GOVNET_TEST_SECRET", "SEC")
    ref = Secret("env:GOVNET_TEST_URL")
    return {
        "webhook": WebhookNotifier("webhook", ref),
        "wecom": WeComNotifier("wecom", ref),
        "dingtalk": DingTalkNotifier("dingtalk", ref, Secret("env:GOVNET_TEST_SECRET")),
        "alertmanager": AlertmanagerNotifier("alertmanager", url),
        "sms": SmsNotifier("sms", ref, {"王工": "13800000000"}),
    }


@pytest.mark.parametrize("channel", ["webhook", "wecom", "dingtalk", "alertmanager", "sms"])
def test_notifier_conformance(
    channel: str, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One test for every HTTP notifier: 5xx/429 retry, other 4xx do not, 2xx succeeds, nothing leaks."""
    notifier = _every_http_notifier(receiver.url, monkeypatch)[channel]
    _, (note,) = ups_notification(tmp_path)
    note = Notification(**{**note.__dict__, "recipients": ("王工",)})
    receiver.script = [(503, {}), (429, {}), (400, {}), (404, {})]
    results = [notifier.send(note, 1_700_000_000.0) for _ in range(5)]
    assert results == [
        (True, "HTTP 503"),
        (True, "HTTP 429"),
        (False, "HTTP 400"),
        (False, "HTTP 404"),
        (False, None),
    ]
    assert len(receiver.requests) == 5
    body = json.dumps(receiver.requests[-1][1], ensure_ascii=False)
    assert "UPS ups-1" in body
    # a dead endpoint is transient, and the error does not show the URL (it may carry a token)
    receiver.close()
    retry, error = notifier.send(note, 0)
    assert retry and error is not None and receiver.url not in error and "127.25" not in error


def test_sms_is_short_and_goes_to_the_rota_person(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    sms = _every_http_notifier(receiver.url, monkeypatch)["sms"]
    _, (note,) = ups_notification(tmp_path)
    assert sms.send(note, 0) == (False, None) and receiver.requests == []  # nobody with a phone named
    note = Notification(**{**note.__dict__, "recipients": ("王工",)})
    assert sms.send(note, 0) == (False, None)
    body = receiver.requests[0][1]
    assert body["to"] == "13800000000" and len(body["text"]) <= 200
    assert body["text"].startswith("【告警】黄色预警") and "处置第一步" in body["text"]


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    require_cmd("prometheus-alertmanager")
    port = _free_port()
    cfg = tmp_path / "am.yml"
    cfg.write_text("route: {receiver: 'null'}\nreceivers: [{name: 'null'}]\n")
    proc = subprocess.Popen(
        ["prometheus-alertmanager", f"--config.file={cfg}", f"--storage.path={tmp_path / 'am'}",
         f"--web.listen-address={HOST}:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://{HOST}:{port}"
    try:
        import time
        import urllib.request

        for _ in range(100):
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.1)  # waiting for a real process to start, not simulating time
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_forwarding_to_a_real_alertmanager(tmp_path: Path, alertmanager: str) -> None:
    import urllib.request

    engine, (note,) = ups_notification(tmp_path)
    forward = AlertmanagerNotifier("am", alertmanager)
    assert forward.send(note, 0) == (False, None)
    with urllib.request.urlopen(alertmanager + "/api/v2/alerts", timeout=5) as resp:
        (alert,) = json.loads(resp.read())
    assert alert["labels"]["alertname"] == "UpsOnBattery" and alert["labels"]["level"] == "III"
    assert alert["annotations"]["incident"] == note.incident_id and alert["status"]["state"] == "active"
    lab = labels_of(device="ups-1", site="idc", role="ups", vendor="generic")
    resolved = []
    for t in range(120, 600, 30):
        engine.publish("ups-1", [Sample("govnet_ups_on_battery", lab, 0.0, t)])
        resolved += engine.evaluate(t)
    assert [n.kind for n in resolved] == ["resolved"]
    assert forward.send(resolved[0], 0) == (False, None)
    with urllib.request.urlopen(alertmanager + "/api/v2/alerts?active=true", timeout=5) as resp:
        assert json.loads(resp.read()) == []  # endsAt in the past: Alertmanager resolved it
