"""The "Se connecter avec France Travail" button and login URL, for templates.

``{% load ftauth %}`` then ``{% ftauth_button "individu" %}`` (an accessible
link styled as a button; the sign-in starts with a GET, so a link is the right
element and it works without JavaScript), or ``{% ftauth_login_url "individu" %}``
for custom markup, and ``{% ftauth_css %}`` for the stylesheet.

A realm that is unknown or not enabled in ``FTAUTH['REALMS']`` is a mistake in
the site's templates or settings: it raises :class:`TemplateSyntaxError` when
``DEBUG`` is on, and is logged and left out of the page otherwise, so a
visitor never gets a link that ends on an error page.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django import template
from django.conf import settings
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from ..conf import get_settings
from ..internal.names import realm_label

logger = logging.getLogger("ftauth.templatetags")
register = template.Library()

# One label per realm, so a page offering several buttons says who each is for.
BUTTON_LABELS: dict[str, Promise] = {
    "individu": _("Se connecter avec France Travail"),
    "employeur": _("Recruteur : se connecter avec France Travail"),
    "partenaire": _("Partenaire : se connecter avec France Travail"),
    "agent": _("Agent France Travail : se connecter"),
    "proconnect": _("S’identifier avec ProConnect"),
}


class _RealmUnavailable(Exception):
    """Raised internally; turned into TemplateSyntaxError or a log line."""


def _check_realm(tag: str, realm: object) -> str:
    name = str(realm) if realm is not None else ""
    conf = get_settings()
    if name not in conf.realms:
        known = ", ".join(conf.realms)
        raise _RealmUnavailable(f"{tag}: unknown realm {name!r}; known realms: {known}.")
    if not conf.realms[name].enabled:
        enabled = ", ".join(conf.enabled_realms) or "none"
        raise _RealmUnavailable(
            f"{tag}: realm {name!r} is not enabled (enabled: {enabled}); "
            f"add it to FTAUTH['REALMS'] or drop the button."
        )
    return name


def _login_url(realm: str, next_url: object) -> str:
    url = reverse("ftauth:login", kwargs={"realm": realm})
    if next_url:
        # The login view decides whether ``next`` is safe; here it is only encoded.
        url = f"{url}?{urlencode({'next': str(next_url)})}"
    return url


def _unavailable(exc: _RealmUnavailable) -> str:
    if settings.DEBUG:
        raise template.TemplateSyntaxError(str(exc)) from None
    logger.error("%s The button was left out of the page.", exc)
    return ""


@register.simple_tag
def ftauth_login_url(realm: str, next: str | None = None) -> str:
    """The URL that starts a sign-in on ``realm``, with ``next`` URL-encoded when given."""
    try:
        name = _check_realm("ftauth_login_url", realm)
    except _RealmUnavailable as exc:
        return _unavailable(exc)
    return _login_url(name, next)


@register.simple_tag
def ftauth_button(
    realm: str,
    next: str | None = None,
    css_class: str = "",
    label: str | None = None,
) -> SafeString | str:
    """The sign-in button of ``realm``; ``label`` replaces the realm's default text."""
    try:
        name = _check_realm("ftauth_button", realm)
    except _RealmUnavailable as exc:
        return _unavailable(exc)
    classes = " ".join(filter(None, ["ftauth-button", f"ftauth-button--{name}", css_class]))
    return render_to_string(
        "ftauth/button.html",
        {
            "realm": name,
            "url": _login_url(name, next),
            "label": label or BUTTON_LABELS.get(name, BUTTON_LABELS["individu"]),
            "css_class": classes,
        },
    )


@register.simple_tag
def ftauth_css() -> SafeString:
    """The ``<link>`` to the button's stylesheet (served from ftauth's static files)."""
    return format_html('<link rel="stylesheet" href="{}">', static("ftauth/ftauth.css"))


@register.filter
def ftauth_realm_label(realm: str) -> str:
    """``individu|ftauth_realm_label`` is « espace candidat »: never the raw code to people."""
    return realm_label(str(realm))
