"""Encryption at rest for stored secrets (auth passwords, tokens, signing secrets).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with ``ENCRYPTION_KEY``.
Several comma-separated keys may be configured: the first encrypts, all decrypt, which is
how an operator rotates the key without a migration.

The key is process-wide: the store's column types read it when a value crosses the
database boundary, so no query can forget to encrypt.
"""

from __future__ import annotations

import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

_box: MultiFernet | None = None


class EncryptionNotConfigured(RuntimeError):
    """Raised when a secret is stored or read before ``configure_encryption``."""


def generate_key() -> str:
    """A new random Fernet key (URL-safe base64 text)."""
    return Fernet.generate_key().decode()


def configure_encryption(keys: str) -> None:
    """Install the process-wide key ring from ``ENCRYPTION_KEY`` (comma-separated)."""
    global _box
    parts = [part.strip() for part in keys.split(",") if part.strip()]
    if not parts:
        raise ValueError("ENCRYPTION_KEY is empty; run `hookcast init` to generate one")
    try:
        _box = MultiFernet([Fernet(part.encode()) for part in parts])
    except (ValueError, TypeError) as exc:
        raise ValueError("ENCRYPTION_KEY is not a valid Fernet key") from exc


def encrypt(plaintext: str) -> str:
    """Encrypt text for storage."""
    if _box is None:
        raise EncryptionNotConfigured("ENCRYPTION_KEY is not configured")
    return _box.encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt a stored token; raises ``ValueError`` when no configured key opens it."""
    if _box is None:
        raise EncryptionNotConfigured("ENCRYPTION_KEY is not configured")
    try:
        return _box.decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("stored secret cannot be decrypted with ENCRYPTION_KEY") from exc


def hash_api_key(key: str) -> str:
    """The stored form of an API key: SHA-256 hex (keys are long and random, so no salt)."""
    return hashlib.sha256(key.encode()).hexdigest()


def generate_api_key() -> str:
    """A new API key: ``hk_`` + 40 URL-safe random characters."""
    return "hk_" + secrets.token_urlsafe(30)
