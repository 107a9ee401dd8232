"""Export manifest signatures (HMAC-SHA256 or Ed25519); keys are given by reference, never by value."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.secrets import Secret


@dataclass(frozen=True, slots=True)
class KeySpec:
    """Which algorithm and which key reference; `ref` is a Secret reference like env:NAME or file:PATH."""

    alg: str  # "hmac-sha256" or "ed25519"
    ref: str


def sign(payload: bytes, key: KeySpec) -> dict[str, Any]:
    """Signature block for the manifest: algorithm, key id (not the key) and the signature."""
    value = Secret(key.ref).resolve()
    if key.alg == "hmac-sha256":
        raw = value.encode()
        key_id = hmac.new(raw, b"govnet-key-id", hashlib.sha256).hexdigest()[:16]
        sig = hmac.new(raw, payload, hashlib.sha256).hexdigest()
        return {"alg": key.alg, "key_id": key_id, "sig": sig}
    if key.alg == "ed25519":
        private = serialization.load_pem_private_key(value.encode(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError("the ed25519 key reference does not hold an Ed25519 private key")
        pub = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {
            "alg": key.alg,
            "key_id": hashlib.sha256(pub).hexdigest()[:16],
            "sig": base64.b64encode(private.sign(payload)).decode(),
        }
    raise ValueError(f"unknown signature algorithm {key.alg!r} (hmac-sha256 or ed25519)")


def check(payload: bytes, block: dict[str, Any], key: KeySpec) -> str | None:
    """None when the signature is valid under `key`; else a reason (never containing the key)."""
    if block.get("alg") != key.alg:
        return f"manifest is signed with {block.get('alg')!r}, verification key is {key.alg!r}"
    value = Secret(key.ref).resolve()
    sig = str(block.get("sig", ""))
    if key.alg == "hmac-sha256":
        expected = hmac.new(value.encode(), payload, hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, sig) else "signature does not match (HMAC)"
    public = serialization.load_pem_public_key(value.encode())
    if not isinstance(public, Ed25519PublicKey):
        return "the verification key is not an Ed25519 public key"
    try:
        public.verify(base64.b64decode(sig), payload)
    except (InvalidSignature, ValueError):
        return "signature does not match (Ed25519)"
    return None
