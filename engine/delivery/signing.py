"""Standard Webhooks signatures (https://www.standardwebhooks.com), as SPEC §5 states them.

Pure: values in, header values out. The worker signs each attempt with the channel's
current secret and, during the 24 h after a rotation, with the previous one as well; the
transport knows nothing about signing.

A secret is ``whsec_`` followed by the base64 of the key (24 to 64 bytes; we generate 32).
The signature of a message is ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as random_source
from collections.abc import Sequence
from functools import lru_cache

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SECRET_KEY_BYTES = 32
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
_MASK_VISIBLE_CHARS = 4


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` + base64 of 32 random bytes."""
    key = random_source.token_bytes(SECRET_KEY_BYTES)
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


#: The longest base64 a key of MAX_KEY_BYTES can be written as (with padding).
_MAX_ENCODED_CHARS = 4 * -(-MAX_KEY_BYTES // 3)


def _secret_key(secret: str) -> bytes | None:
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        return None
    encoded = secret[len(SECRET_PREFIX) :]
    if len(encoded) > _MAX_ENCODED_CHARS:
        return None  # too long to be a key: not decoded, and not kept in the cache
    return _decode_key(encoded)


@lru_cache(maxsize=1024)  # every attempt signs: decode each campaign's key once
def _decode_key(encoded: str) -> bytes | None:
    encoded += "=" * (-len(encoded) % 4)  # padding is optional, as other signers accept
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        return None
    return key


def is_valid_secret(secret: str) -> bool:
    """True for ``whsec_`` + base64 (padding optional) of a 24 to 64 byte key."""
    return _secret_key(secret) is not None


def sign(*, msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """The ``v1,<signature>`` of one message under one secret.

    Raises ``ValueError`` for a secret that :func:`is_valid_secret` rejects.
    """
    key = _secret_key(secret)
    if key is None:
        raise ValueError("not a valid signing secret (expected whsec_ + base64 key)")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError("timestamp must be whole Unix seconds")
    signed_content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.digest(key, signed_content, hashlib.sha256)  # one-shot: no HMAC object
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(*, msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated.

    Give the current secret first, then the previous one while it is still honoured.
    A secret listed twice is signed once.
    """
    if isinstance(secrets, str):
        raise TypeError("secrets is a sequence of secrets, not one secret")
    unique = list(dict.fromkeys(secrets))
    if not unique:
        raise ValueError("at least one signing secret is needed")
    return " ".join(
        sign(msg_id=msg_id, timestamp=timestamp, body=body, secret=secret) for secret in unique
    )


def webhook_headers(
    *, msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt of one message."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            msg_id=msg_id, timestamp=timestamp, body=body, secrets=secrets
        ),
    }


def mask_secret(secret: str | None) -> str | None:
    """A display form that identifies a secret without revealing it: ``whsec_****abcd``.

    The last four base64 characters carry at most 24 bits of a 256-bit key: enough to tell
    two secrets apart, far too little to sign. Short or malformed values show no characters.
    """
    if secret is None:
        return None
    if not is_valid_secret(secret):
        return SECRET_PREFIX + "****"
    visible = secret.rstrip("=")[-_MASK_VISIBLE_CHARS:]
    return f"{SECRET_PREFIX}****{visible}"
