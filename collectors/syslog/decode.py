"""Tolerant decoding of device bytes: UTF-8, else GBK (Chinese-locale devices), else UTF-8 with U+FFFD."""

from __future__ import annotations

from typing import Final

_TRAILER: Final = b"\x00\r\n"


def strip_trailer(raw: bytes) -> bytes:
    """Drop trailing NUL/CR/LF (Hillstone ends with LF NUL) and leading NULs, for parsing only."""
    return raw.strip(b"\x00").rstrip(_TRAILER)


def decode(data: bytes) -> tuple[str, str]:
    """Return (text, encoding used); never raises."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gbk"), "gbk"
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), "utf-8-replace"
