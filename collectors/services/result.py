"""What one service check found: verdict, reason, phase timings, certificate, DNS answers, page."""

from __future__ import annotations

from dataclasses import dataclass, field

PHASES = ("dns", "connect", "tls", "first_byte", "total")


@dataclass(frozen=True, slots=True)
class CertInfo:
    """The leaf certificate a server presented and how it was judged."""

    not_before: float
    not_after: float  # unix seconds
    subject: str
    issuer: str
    names: tuple[str, ...]  # subjectAltName DNS names and IP addresses
    fingerprint_sha256: str
    chain_ok: bool  # verified up to the system trust store or the configured CA file
    chain_error: str  # OpenSSL's reason when not chain_ok ("certificate has expired", ...)
    hostname_ok: bool
    protocol: str  # TLSv1.3, TLSv1.2, ...


@dataclass(slots=True)
class CheckResult:
    """One check of one service (`up` with an empty `reason`, or down with a short reason)."""

    up: bool
    reason: str = ""
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase, PHASES
    status: int | None = None  # final HTTP status
    redirects: int = 0
    final_url: str = ""
    cert: CertInfo | None = None
    dns_answers: dict[str, list[str]] = field(default_factory=dict)  # server -> sorted answers
    dns_ok: dict[str, bool] = field(default_factory=dict)  # server -> answers equal the expected set
    body: bytes | None = None  # the page (bounded by expect.max_body) for keyword and content checks
    body_text: str = ""  # the page decoded (for keywords)
    charset: str | None = None  # declared in Content-Type

    def fail(self, reason: str) -> CheckResult:
        """Mark down with `reason` (the first failure wins); returns self."""
        if self.up or not self.reason:
            self.reason = reason
        self.up = False
        return self
