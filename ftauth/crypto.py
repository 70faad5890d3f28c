"""Encryption of tokens at rest: Fernet (AES-128-CBC + HMAC-SHA256, authenticated).

Keys come from ``FTAUTH["TOKEN_KEYS"]``: the first key encrypts, every key
decrypts (:class:`~cryptography.fernet.MultiFernet`), so a key is rotated by
putting a new one first, running ``manage.py ftauth_rotate_keys``, then
removing the old one. Error messages name the setting, never a key or a token.
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .conf import get_settings
from .core.errors import ConfigurationError, FTAuthError


class TokenKeyError(ConfigurationError):
    """``FTAUTH["TOKEN_KEYS"]`` is empty or holds a malformed key."""


class TokenDecryptionError(FTAuthError):
    """A stored token cannot be decrypted with any key of ``FTAUTH["TOKEN_KEYS"]``.

    The key it was encrypted with was removed or changed. The ciphertext is
    left untouched: putting the old key back (last in the list) recovers it.
    """

    def __init__(self) -> None:
        super().__init__(
            "a stored token cannot be decrypted with any key of FTAUTH['TOKEN_KEYS']: "
            "the key it was encrypted with is missing; add it back at the end of the list"
        )


def parse_keys(keys: tuple[str, ...] | list[str]) -> list[Fernet]:
    """One :class:`Fernet` per configured key, in order; :class:`TokenKeyError` otherwise."""
    if not keys:
        raise TokenKeyError(
            "FTAUTH['TOKEN_KEYS'] is empty: tokens cannot be stored without an encryption key"
        )
    fernets = []
    for index, key in enumerate(keys):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            # The key itself is never part of the message: it is a secret.
            raise TokenKeyError(
                f"FTAUTH['TOKEN_KEYS'][{index}] is not a Fernet key "
                "(32 random bytes in URL-safe base64)"
            ) from None
    return fernets


@functools.lru_cache(maxsize=4)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet(parse_keys(keys))


def cipher() -> MultiFernet:
    """The cipher built from the current settings (rebuilt when they change)."""
    return _cipher(tuple(get_settings().token_keys))


def encrypt(plaintext: str) -> str:
    """Encrypt ``plaintext`` with the first key; an empty value stays empty."""
    if not plaintext:
        return ""
    return cipher().encrypt(plaintext.encode()).decode("ascii")


def decrypt(ciphertext: str) -> str:
    """Decrypt with whichever key fits; :class:`TokenDecryptionError` if none does."""
    if not ciphertext:
        return ""
    try:
        return cipher().decrypt(ciphertext.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise TokenDecryptionError() from None


def reencrypt(ciphertext: str) -> str:
    """The same plaintext, encrypted under the first key (for key rotation)."""
    if not ciphertext:
        return ""
    try:
        return cipher().rotate(ciphertext.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise TokenDecryptionError() from None
