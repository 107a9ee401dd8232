"""The log store's compiled modules (core/native.py guards them): the parse workers' numbering (mypyc)
and the SHA-256 work of numbering, chaining and sealing (logstore/digest.c, OpenSSL)."""

from __future__ import annotations

from pathlib import Path

from core.native import CModule, Native

NATIVE = Native(
    "logstore",
    Path(__file__).parent,
    ("batch",),
    "log store numbering and hashing",
    c_modules=(CModule("digest", ("crypto",), ("openssl/evp.h",), "libssl-dev"),),
)
