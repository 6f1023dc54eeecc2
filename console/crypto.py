"""Backend credentials at rest: Fernet encryption keyed by CREDENTIALS_KEY (or derived from SECRET_KEY)."""
from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models

_PREFIX = "fernet:"


@lru_cache(maxsize=1)
def _fernet() -> Fernet:
    key = settings.CREDENTIALS_KEY
    if not key:
        key = base64.urlsafe_b64encode(hashlib.sha256(("credentials:" + settings.SECRET_KEY).encode()).digest())
    return Fernet(key)


def encrypt(plain: str) -> str:
    if not plain:
        return ""
    return _PREFIX + _fernet().encrypt(plain.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored:
        return ""
    if not stored.startswith(_PREFIX):
        return stored
    try:
        return _fernet().decrypt(stored[len(_PREFIX):].encode()).decode()
    except InvalidToken:
        # A rotated key makes old credentials unreadable; treat them as unset rather than crash.
        return ""


MASK = "••••••••"  # also what exports carry in place of every secret (toolyaml.MASKED_CREDENTIAL)
MASK_SHOWS_TAIL_FROM = 16  # a secret at least this long may show its last 4 characters; a shorter one nothing


def mask(plain: str) -> str:
    """What the console shows of a stored secret: `••••••••`, then the last 4 characters only for a long one.

    The end is enough for a person to tell their keys apart; the start is not shown because it is
    often a vendor's prefix that says what the key opens. A short secret shows nothing at all: four
    of its characters would be a large share of it.
    """
    if not plain:
        return ""
    if len(plain) < MASK_SHOWS_TAIL_FROM:
        return MASK
    return MASK + plain[-4:]


def token_hint(secret: str, prefix: str) -> str:
    """What the token list may show of an API token: its public prefix and the last 4 of its 43 random characters."""
    return prefix + "••••" + secret[-4:]


def is_masked(value: str) -> bool:
    """True for a secret as the console or an export shows it: submitting it back keeps the stored one."""
    return "••" in value


class EncryptedTextField(models.TextField):
    """A text column whose value is encrypted on the way in and decrypted on the way out."""

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else value
