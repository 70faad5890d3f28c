"""Tokens at rest: Fernet encryption, key rotation, clear errors on missing or wrong keys."""

from __future__ import annotations

import copy

import pytest
from cryptography.fernet import Fernet

from ftauth import crypto

SECRET = "AT-plaintext-crypto"


def use_keys(settings, keys) -> None:
    conf = copy.deepcopy(settings.FTAUTH)
    conf["TOKEN_KEYS"] = keys
    settings.FTAUTH = conf


def test_roundtrip_and_ciphertext_hides_the_token():
    ciphertext = crypto.encrypt(SECRET)
    assert SECRET not in ciphertext
    assert crypto.decrypt(ciphertext) == SECRET


def test_each_encryption_is_different():
    assert crypto.encrypt(SECRET) != crypto.encrypt(SECRET)


def test_empty_value_stays_empty():
    assert crypto.encrypt("") == ""
    assert crypto.decrypt("") == ""


def test_tampered_ciphertext_is_refused():
    ciphertext = crypto.encrypt(SECRET)
    raw = bytearray(ciphertext.encode())
    raw[30] = ord("A") if raw[30] != ord("A") else ord("B")
    with pytest.raises(crypto.TokenDecryptionError):
        crypto.decrypt(raw.decode())


def test_first_key_encrypts_and_every_key_decrypts(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_keys(settings, [old])
    under_old = crypto.encrypt(SECRET)
    use_keys(settings, [new, old])
    assert crypto.decrypt(under_old) == SECRET
    under_new = crypto.encrypt(SECRET)
    use_keys(settings, [new])
    assert crypto.decrypt(under_new) == SECRET
    with pytest.raises(crypto.TokenDecryptionError):
        crypto.decrypt(under_old)


def test_reencrypt_moves_a_token_to_the_first_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_keys(settings, [old])
    ciphertext = crypto.encrypt(SECRET)
    use_keys(settings, [new, old])
    rotated = crypto.reencrypt(ciphertext)
    use_keys(settings, [new])
    assert crypto.decrypt(rotated) == SECRET


def test_wrong_key_raises_a_clear_error_without_secrets(settings):
    ciphertext = crypto.encrypt(SECRET)
    other = Fernet.generate_key().decode()
    use_keys(settings, [other])
    with pytest.raises(crypto.TokenDecryptionError) as excinfo:
        crypto.decrypt(ciphertext)
    message = str(excinfo.value)
    assert "TOKEN_KEYS" in message
    assert other not in message and SECRET not in message and ciphertext not in message
    assert excinfo.value.__cause__ is None and excinfo.value.__suppress_context__


def test_missing_keys_raise_a_configuration_error(settings):
    use_keys(settings, [])
    with pytest.raises(crypto.TokenKeyError, match=r"TOKEN_KEYS.*empty"):
        crypto.encrypt(SECRET)


def test_malformed_key_is_named_by_position_not_by_value(settings):
    good = Fernet.generate_key().decode()
    bad = "not-a-fernet-key-but-a-secret-all-the-same"
    use_keys(settings, [good, bad])
    with pytest.raises(crypto.TokenKeyError) as excinfo:
        crypto.encrypt(SECRET)
    assert "TOKEN_KEYS'][1]" in str(excinfo.value)
    assert bad not in str(excinfo.value)
