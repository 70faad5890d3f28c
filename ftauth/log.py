"""A logging filter that keeps sign-in secrets out of request logs.

A request line holds the query string: the callback's ``code`` and ``state``,
the end-session URL's ``id_token_hint`` (a whole ID token, with the person's
claims). Django's dev server (``django.server``) and ``django.request`` log
those lines as they are. Put :class:`RedactSecrets` on those loggers (see
docs/security.md): a logger's filters see each record before any handler, its
parents' handlers (``mail_admins``) included. gunicorn's access log is not a
Django logger: :mod:`ftauth.gunicorn` is the logger class that does the same there.
"""

from __future__ import annotations

import logging
import re

# Query or form parameters whose value is a secret, or lets one be obtained.
SECRET_PARAMETERS = (
    "code",
    "state",
    "nonce",
    "id_token_hint",
    "id_token",
    "access_token",
    "refresh_token",
    "logout_token",
    "client_secret",
    "code_verifier",
)
REDACTED = "[redacted]"

_PARAMETER = re.compile(
    r"(?P<name>(?<![\w-])(?:" + "|".join(SECRET_PARAMETERS) + r"))=(?P<value>[^&\s\"'#;]+)",
    re.IGNORECASE,
)
# A bearer token or a bare JWT (three base64url parts, the first starting "eyJ").
_BEARER = re.compile(r"(?i)(bearer\s+)[\w.~+/=-]+")
_JWT = re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*")


def redact(text: str) -> str:
    """``text`` with every secret parameter's value, bearer token and JWT replaced."""
    text = _PARAMETER.sub(lambda m: f"{m['name']}={REDACTED}", text)
    text = _BEARER.sub(lambda m: m[1] + REDACTED, text)
    return _JWT.sub(REDACTED, text)


def redact_query_values(query: str) -> str:
    """A query string with every value replaced, the parameter names kept in order."""
    parts = []
    for part in query.split("&"):
        name, equals, _value = part.partition("=")
        # A part without "=" is all value.
        parts.append(f"{redact(name)}={REDACTED}" if equals else (part and REDACTED))
    return "&".join(parts)


class RedactSecrets(logging.Filter):
    """Rewrites the record's message and arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            # Argument by argument, so formatters that read them (Django's
            # ServerFormatter colours by status) still find them in place.
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            args = record.args.items()
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in args}
        return True
