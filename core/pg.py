"""One way to open a PostgreSQL connection: autocommit, keepalives, errors that never name the DSN."""

from __future__ import annotations

from typing import Any

import psycopg


def connect(dsn: str, application_name: str) -> psycopg.Connection[Any]:
    """An autocommit connection with TCP keepalives, so a dead peer is noticed in seconds, not hours.

    Errors name neither the DSN nor its password.
    """
    try:
        return psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=5,
            application_name=application_name,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )
    except psycopg.Error as exc:
        # psycopg's message may quote the host; never the password, but keep it short anyway.
        raise ConnectionError(f"cannot reach the PostgreSQL alert store ({type(exc).__name__})") from None
