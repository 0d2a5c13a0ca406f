"""Standard Webhooks signatures (https://www.standardwebhooks.com/): HMAC-SHA256 over
"{webhook-id}.{webhook-timestamp}.{body}", base64, sent as "v1,<sig>"; one per secret, space separated."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as secrets_module

PREFIX = "whsec_"
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64  # the spec's bounds for a secret's key


class SigningError(ValueError):
    pass


def generate_secret() -> str:
    return PREFIX + base64.b64encode(secrets_module.token_bytes(32)).decode()


def parse_secret(secret: str) -> bytes:
    """The key bytes of a "whsec_<base64>" secret; refuses anything else, so a typo is caught on save."""
    if not secret.startswith(PREFIX):
        raise SigningError("a signing secret starts with whsec_ (leave it empty to generate one)")
    try:
        key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SigningError("the part after whsec_ must be base64") from exc
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise SigningError(f"a signing key has {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, this one {len(key)}")
    return key


def signature_header(msg_id: str, timestamp: int, body: bytes, secrets: list[str]) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets:
        digest = hmac.new(parse_secret(secret), signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode())
    return " ".join(signatures)
