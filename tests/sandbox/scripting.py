"""Drive the sandbox's pages as a client application's user would, over HTTP.

Unlike ``ftauth.sandbox.scripted.ScriptedUser`` (which goes through a site
using ftauth), this starts at the sandbox's own authorization URL and can
stop at the redirect that leaves the sandbox, so that the tests play the
client application themselves.
"""

from __future__ import annotations

from urllib.parse import urljoin

import requests

from ftauth.sandbox.scripted import Form, parse_html_forms

LOGIN_FORM = "ftauth-sandbox-login"
CONSENT_FORM = "ftauth-sandbox-consent"
AUTHORIZE_PATH = "/connexion/oauth2/authorize"


def parse_forms(html: str) -> dict[str, Form]:
    """The forms of a page, by id."""
    return {form.id: form for form in parse_html_forms(html)}


def submit(session: requests.Session, page: requests.Response, form: Form, **values: str):
    data = dict(form.fields)
    data.update(values)
    return session.post(
        urljoin(page.url, form.action or page.url), data=data, allow_redirects=False
    )


def sign_in(
    session: requests.Session,
    url: str,
    persona: str,
    *,
    decision: str = "accept",
    follow_callback: bool = True,
    max_steps: int = 12,
    timeout: float = 10.0,
) -> requests.Response:
    """Go from ``url`` through the sandbox's pages as ``persona``; return the last response."""
    response = session.get(url, allow_redirects=False, timeout=timeout)
    for _ in range(max_steps):
        if response.is_redirect:
            if not follow_callback and AUTHORIZE_PATH in response.url:
                return response
            response = session.get(
                urljoin(response.url, response.headers["Location"]),
                allow_redirects=False,
                timeout=timeout,
            )
            continue
        forms = (
            parse_forms(response.text) if "html" in response.headers.get("Content-Type", "") else {}
        )
        if LOGIN_FORM in forms:
            response = submit(session, response, forms[LOGIN_FORM], persona=persona)
        elif CONSENT_FORM in forms:
            response = submit(session, response, forms[CONSENT_FORM], decision=decision)
        else:
            return response
    raise RuntimeError(f"sign_in did not finish in {max_steps} steps (last: {response.url})")
