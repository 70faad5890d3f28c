"""A gunicorn logger whose access and error logs carry no sign-in secret.

gunicorn's access log prints the request line (``%(r)s``), query string
included, and the ``Referer``: the callback's ``code`` and ``state``, the
sandbox's authorization URL with its ``state`` and ``nonce``, the end-session
URL with a whole ID token (``id_token_hint``). Run gunicorn with::

    gunicorn mysite.wsgi:application --access-logfile - --logger-class ftauth.gunicorn.Logger

On ftauth's and the sandbox's paths (wherever the project mounts them: found by
resolving the path, not by a prefix) every value of the query string is
replaced by ``[redacted]``, the parameter names kept; on every other path, and
in every other field, the secrets :func:`ftauth.log.redact` knows are. The
request is still logged, with its path, status and timing. The error log gets
:class:`ftauth.log.RedactSecrets` ("Error handling request /ftauth/callback/...").
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from gunicorn import glogging

from .log import RedactSecrets, redact, redact_query_values

# The apps whose query strings are secrets from end to end (their URLconfs' app_name).
SECRET_QUERY_APPS = frozenset({"ftauth", "ftauth_sandbox"})

_ERROR_FILTER = RedactSecrets()


def _is_secret_path(path: str) -> bool:
    """Whether ``path`` (without the script name) is one of ftauth's or the sandbox's."""
    from django.urls import Resolver404, resolve

    try:
        match = resolve(path)
    except Resolver404:
        return False
    except Exception:
        # Django not set up, a broken URLconf: whatever the path is, blank its values.
        return True
    return not SECRET_QUERY_APPS.isdisjoint(match.app_names)


def _redact_url(url: str, script_name: str = "") -> str:
    """``url`` (a path or an absolute URL) with its secrets replaced."""
    head, question, query = url.partition("?")
    if not question:
        return redact(url)
    path = urlsplit(head).path
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    if _is_secret_path(path or "/"):
        return f"{redact(head)}?{redact_query_values(query)}"
    return redact(url)


class Logger(glogging.Logger):
    """gunicorn's logger, its access log's fields and error log's lines redacted."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # One filter instance: a reload (SIGHUP) calls setup again without stacking it.
        self.error_log.addFilter(_ERROR_FILTER)

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        atoms = {k: redact(v) if isinstance(v, str) else v for k, v in atoms.items()}
        script_name = environ.get("SCRIPT_NAME", "")
        uri = _redact_url(environ.get("RAW_URI", ""), script_name)
        query = uri.partition("?")[2]
        referer = _redact_url(environ.get("HTTP_REFERER", ""), script_name) or "-"
        method, protocol = environ.get("REQUEST_METHOD"), environ.get("SERVER_PROTOCOL")
        atoms.update(
            {
                "r": f"{method} {uri} {protocol}",
                "q": query,
                "{query_string}e": query,
                "{raw_uri}e": uri,
                "f": referer,
                "{referer}i": referer,
                "{http_referer}e": referer,
            }
        )
        return atoms
