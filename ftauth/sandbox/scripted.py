"""A scripted user for the sandbox: follows redirects and posts the sandbox's forms.

For integration tests of a site that uses ftauth (ours, and yours): it signs
in through the real HTTP flow, as a browser without JavaScript would::

    user = ScriptedUser("http://127.0.0.1:8000")
    page = user.sign_in("individu", persona="sandbox-individu-camille")
    assert page.url.endswith("/profile/")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests


@dataclass
class Form:
    action: str
    method: str
    id: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = Form(
                action=a.get("action", ""),
                method=a.get("method", "get").lower(),
                id=a.get("id", ""),
            )
            self.forms.append(self._current)
        elif self._current is not None and tag in ("input", "button", "select"):
            kind = a.get("type", "submit" if tag == "button" else "text").lower()
            name = a.get("name")
            if not name:
                return
            if kind == "submit":
                self._current.buttons.append((name, a.get("value", "")))
            elif kind in ("radio", "checkbox"):
                if "checked" in a:
                    self._current.fields[name] = a.get("value", "on")
            else:
                self._current.fields[name] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_html_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def forms_of(response: requests.Response) -> list[Form]:
    return parse_html_forms(response.text)


class ScriptedUser:
    """One browser: a cookie jar that follows redirects and submits forms."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        self.http.trust_env = False
        self.timeout = timeout

    def get(self, path_or_url: str, **kwargs: object) -> requests.Response:
        return self.http.get(
            urljoin(self.base_url + "/", path_or_url), timeout=self.timeout, **kwargs
        )

    def submit(
        self,
        page: requests.Response,
        *,
        form_id: str | None = None,
        button: tuple[str, str] | None = None,
    ) -> requests.Response:
        """Submit a form of ``page`` (the one with ``form_id``, else the first) with ``button``."""
        forms = [f for f in forms_of(page) if form_id is None or f.id == form_id]
        if not forms:
            raise AssertionError(f"no form {form_id or ''} on {page.url}")
        form = forms[0]
        data = dict(form.fields)
        if button is not None:
            if button not in form.buttons:
                raise AssertionError(f"no button {button} in form {form.id} on {page.url}")
            data[button[0]] = button[1]
        url = urljoin(page.url, form.action or page.url)
        headers = {"Referer": page.url}
        if form.method == "post":
            return self.http.post(url, data=data, headers=headers, timeout=self.timeout)
        return self.http.get(url, params=data, headers=headers, timeout=self.timeout)

    def sign_in(
        self,
        realm: str,
        *,
        persona: str | None = None,
        decision: str = "accept",
        next_url: str | None = None,
        login_url: str | None = None,
    ) -> requests.Response:
        """Start at the site's login URL, pick ``persona``, answer the consent screen.

        ``login_url`` is where the site mounts ftauth's login view for ``realm``
        (``reverse("ftauth:login", args=[realm])``); by default ``/ftauth/login/<realm>/``.
        """
        params = {"next": next_url} if next_url else None
        page = self.get(login_url or f"/ftauth/login/{realm}/", params=params)
        login_forms = [f for f in forms_of(page) if f.id == "ftauth-sandbox-login"]
        if login_forms:
            choices = [b for b in login_forms[0].buttons if b[0] == "persona"]
            chosen = next((b for b in choices if b[1] == persona), None) if persona else choices[0]
            if chosen is None:
                raise AssertionError(f"persona {persona} not offered on {page.url}")
            page = self.submit(page, form_id="ftauth-sandbox-login", button=chosen)
        if any(f.id == "ftauth-sandbox-consent" for f in forms_of(page)):
            page = self.submit(
                page, form_id="ftauth-sandbox-consent", button=("decision", decision)
            )
        return page
