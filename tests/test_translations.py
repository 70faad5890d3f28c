"""French first, English complete: every catalogue translated, compiled and in use."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = [
    ROOT / "ftauth/locale/en/LC_MESSAGES/django.po",
    ROOT / "ftauth/sandbox/locale/en/LC_MESSAGES/django.po",
    ROOT / "demo_site/locale/en/LC_MESSAGES/django.po",
]
FRENCH = [Path(str(po).replace("/en/", "/fr/")) for po in ENGLISH]
# An apostrophe between two letters is French prose (l’application, n’a); code quoted in
# a message (FTAUTH['REALMS']) has none.
STRAIGHT_APOSTROPHE = re.compile(r"(?<=[^\W\d_])'(?=[^\W\d_])")


@pytest.mark.parametrize("po", ENGLISH, ids=lambda p: str(p.relative_to(ROOT)))
def test_english_catalogue_is_complete_and_compiled(po):
    # msgfmt --statistics counts translated, fuzzy and untranslated messages.
    stats = subprocess.run(
        ["msgfmt", "--statistics", "-o", "/dev/null", str(po)],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    assert "fuzzy" not in stats and "untranslated" not in stats, stats
    mo = po.with_suffix(".mo")
    assert mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime - 1, "run make messages"
    compiled = subprocess.run(
        ["msgfmt", "-o", "-", str(po)], capture_output=True, check=True
    ).stdout
    assert compiled == mo.read_bytes(), "the committed .mo is stale: run make messages"


@pytest.mark.django_db
def test_pages_new_in_issue_9_speak_english_to_an_english_browser():
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    logout = client.get("/ftauth/logout/").content.decode()
    assert "You are not signed in." in logout and "Vous n" not in logout
    withdrawn = client.get("/ftauth/consent-withdrawn/").content.decode()
    assert "Job seeker space" in withdrawn
    with translation.override("en"):
        from ftauth.internal.names import realm_label

        assert realm_label("employeur") == "recruiter space"


@pytest.mark.django_db
def test_a_french_browser_gets_french_even_when_the_site_defaults_to_english(settings):
    settings.LANGUAGE_CODE = "en-us"
    html = Client(HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9").get("/").content.decode()
    assert "Se connecter avec France Travail" in html
    assert re.search(r'<html lang="fr', html)


def french_texts(po: Path) -> list[str]:
    """Every French text of a catalogue: the msgids (French is the source language),
    and the msgstrs of the French catalogue."""
    keys = ("msgid", "msgid_plural") + (
        ("msgstr", "msgstr[0]", "msgstr[1]") if "/fr/" in str(po) else ()
    )
    texts, current = [], None
    for line in po.read_text(encoding="utf-8").splitlines():
        key, _, rest = line.partition(" ")
        if key in keys and rest.startswith('"'):
            current = [rest[1:-1]]
            texts.append(current)
        elif line.startswith('"') and current is not None:
            current.append(line[1:-1])
        else:
            current = None
    return ["".join(parts) for parts in texts if "".join(parts)]


@pytest.mark.parametrize("po", ENGLISH + FRENCH, ids=lambda p: str(p.relative_to(ROOT)))
def test_french_text_uses_the_typographic_apostrophe(po):
    """One apostrophe on a page, the typographic one: « l’application », never « l'application »
    beside it."""
    texts = french_texts(po)
    assert len(texts) > 40  # the catalogue was read
    assert [text for text in texts if STRAIGHT_APOSTROPHE.search(text)] == []
    assert any("’" in text for text in texts)


def test_the_demo_says_api_response_in_english():
    import gettext

    with (ROOT / "demo_site/locale/en/LC_MESSAGES/django.mo").open("rb") as mo:
        english = gettext.GNUTranslations(mo)
    text = english.gettext("Réponse de l’API <code>%(path)s</code> :")
    assert text == "API response <code>%(path)s</code>:"
