"""Secrets for the reference backend: password hashes, API secret hashes and random tokens.

Passwords are hashed with scrypt and a random salt into a self-describing PHC-style string,
``$scrypt$ln=14,r=8,p=1$<salt>$<hash>`` (unpadded base64), so the cost can be raised later
without breaking stored hashes. API secrets are random and long, so a plain SHA-256 is enough
for them (``sha256$<hex>``); only the hash is stored. So are the browser sign-in's access and
refresh tokens (`token_hash`, plain hex so that a token can be looked up by its hash).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

_SCRYPT_LN = 14  # n = 2**14: about 16 MiB of memory and a few tens of milliseconds per hash
_SCRYPT_R = 8
_SCRYPT_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt(password: str, salt: bytes, ln: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=2**ln, r=r, p=p, maxmem=_MAXMEM, dklen=dklen
    )


def hash_password(password: str) -> str:
    """Hash ``password`` with scrypt and a fresh random salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, _SCRYPT_LN, _SCRYPT_R, _SCRYPT_P, _HASH_BYTES)
    return f"$scrypt$ln={_SCRYPT_LN},r={_SCRYPT_R},p={_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (a `hash_password` string); False if malformed."""
    parts = stored.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "scrypt":
        return False
    try:
        params = dict(item.split("=", 1) for item in parts[2].split(","))
        ln, r, p = int(params["ln"]), int(params["r"]), int(params["p"])
        salt, expected = _unb64(parts[3]), _unb64(parts[4])
    except (KeyError, ValueError, binascii.Error):
        return False
    if not (1 <= ln <= 20 and 1 <= r <= 32 and 1 <= p <= 16 and expected):
        return False
    try:
        actual = _scrypt(password, salt, ln, r, p, len(expected))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


DUMMY_PASSWORD_HASH = hash_password(secrets.token_hex(16))
"""Verified against when the user does not exist, so both failures take the same time."""


def hash_secret(secret: str) -> str:
    return "sha256$" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def verify_secret(stored: str, secret: str) -> bool:
    return hmac.compare_digest(stored.encode("ascii", "replace"), hash_secret(secret).encode())


def new_sid() -> str:
    """A session id shaped like Frappe's: 56 hex characters."""
    return secrets.token_hex(28)


def new_api_key() -> str:
    """A public API key; Frappe's are 15 characters."""
    return secrets.token_hex(8)[:15]


def new_api_secret() -> str:
    return secrets.token_hex(16)


def new_conversation_id() -> str:
    return "conv-" + secrets.token_hex(8)


def new_auth_request_id() -> str:
    """A browser sign-in request id: 20 hex characters (Frappe's ``generate_hash(length=20)``)."""
    return secrets.token_hex(10)


def new_access_token() -> str:
    """An access or refresh token of the browser sign-in: 64 hex characters, as the app's."""
    return secrets.token_hex(32)


def token_hash(token: str) -> str:
    """What is stored of an access or refresh token: its SHA-256, in hex.

    The tokens are 256 random bits, so an unsalted hash is enough, and it can be looked up.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
