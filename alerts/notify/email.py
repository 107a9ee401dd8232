"""E-mail over SMTP (STARTTLS and login optional), UTF-8 Chinese subject and body."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from alerts.engine import Notification
from alerts.notify.base import OK, Result
from core.secrets import Secret


@dataclass
class EmailNotifier:
    """Sends each notification as one mail to fixed addresses plus the people it names (when they map)."""

    name: str
    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    starttls: bool = True
    username: str | None = None
    password: Secret | None = None
    people: dict[str, str] = field(default_factory=dict)  # rota name -> address
    timeout: float = 10.0
    tls_context: ssl.SSLContext | None = None

    def message(self, n: Notification, now: float) -> EmailMessage:
        """The mail for a notification."""
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = ", ".join(
            dict.fromkeys([*self.to, *(self.people[p] for p in n.recipients if p in self.people)])
        )
        msg["Subject"] = n.title
        msg["Date"] = formatdate(now)
        msg["Message-ID"] = make_msgid(domain="govnet")
        msg["X-Govnet-Incident"] = n.incident_id
        msg.set_content(n.text, charset="utf-8")
        return msg

    @staticmethod
    def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
        # One mechanism, not smtplib's try-them-all: a wrong password is one clean 535, not a
        # disconnect after several failed attempts (which would look transient).
        smtp.ehlo_or_helo_if_needed()
        if "PLAIN" in smtp.esmtp_features.get("auth", "").upper().split():
            smtp.user, smtp.password = user, password
            smtp.auth("PLAIN", smtp.auth_plain)
        else:
            smtp.login(user, password)

    def send(self, n: Notification, now: float) -> Result:
        """One SMTP session; 4xx replies and connection failures are transient, 5xx permanent."""
        return self.deliver(self.message(n, now))

    def deliver(self, msg: EmailMessage) -> Result:
        """Send any prepared mail (a notification, a monthly report) through this channel's server."""
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=self.tls_context or ssl.create_default_context())
                if self.username and self.password is not None:
                    self._login(smtp, self.username, self.password.resolve())
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            return 400 <= exc.smtp_code < 500, f"SMTP {exc.smtp_code}"
        except smtplib.SMTPRecipientsRefused:
            return False, "SMTP recipients refused"
        except (smtplib.SMTPException, OSError) as exc:
            return True, f"SMTP failed ({type(exc).__name__})"
        return OK
