"""The sign-in button and login URL template tags (ftauth/templatetags/ftauth.py)."""

from __future__ import annotations

import copy
import logging
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.utils import translation

import ftauth


def render(source: str, **context) -> str:
    return Template("{% load ftauth %}" + source).render(Context(context))


class _Tags(HTMLParser):
    """Collects (tag, attrs, text inside) for a small fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


def link_of(html: str) -> dict[str, str | None]:
    anchors = [attrs for tag, attrs in parse(html).tags if tag == "a"]
    assert len(anchors) == 1, html
    return anchors[0]


@pytest.fixture
def only_individu(settings):
    conf = copy.deepcopy(settings.FTAUTH)
    conf["REALMS"] = {"individu": conf["REALMS"]["individu"]}
    settings.FTAUTH = conf


def test_button_links_to_the_login_view_of_its_realm():
    link = link_of(render('{% ftauth_button "individu" %}'))
    assert link["href"] == "/ftauth/login/individu/"
    assert link["data-ftauth-realm"] == "individu"


def test_button_accessible_name_is_its_text_and_icon_is_decorative():
    html = render('{% ftauth_button "individu" %}')
    parsed = parse(html)
    assert "".join(parsed.text).strip() == "Se connecter avec France Travail"
    svg = next(attrs for tag, attrs in parsed.tags if tag == "svg")
    assert svg["aria-hidden"] == "true"
    assert svg["focusable"] == "false"
    # A real link: reachable by keyboard, no JavaScript, no ARIA role overriding it.
    link = link_of(html)
    assert "role" not in link and "tabindex" not in link and "onclick" not in link


def test_button_uses_no_third_party_resource():
    html = render('{% ftauth_button "employeur" %}')
    assert "http:" not in html and "https:" not in html.replace("http://www.w3.org", "")
    assert "<img" not in html and "<script" not in html


@pytest.mark.parametrize(
    ("realm", "label"),
    [
        ("individu", "Se connecter avec France Travail"),
        ("employeur", "Recruteur : se connecter avec France Travail"),
        ("partenaire", "Partenaire : se connecter avec France Travail"),
    ],
)
def test_button_label_says_which_realm(realm, label):
    html = render("{% ftauth_button realm %}", realm=realm)
    assert "".join(parse(html).text).strip() == label
    assert link_of(html)["href"] == f"/ftauth/login/{realm}/"


def test_button_next_is_url_encoded():
    next_url = "/offres/?motsCles=boulanger&range=0-19#é"
    link = link_of(render("{% ftauth_button 'individu' next=next %}", next=next_url))
    parts = urlsplit(link["href"])
    assert parts.path == "/ftauth/login/individu/"
    assert parse_qs(parts.query) == {"next": [next_url]}
    assert "&range" not in link["href"] and "#" not in link["href"]


def test_button_next_cannot_break_out_of_the_attribute():
    html = render("{% ftauth_button 'individu' next=next %}", next='/"><script>alert(1)</script>')
    assert "<script" not in html
    assert parse_qs(urlsplit(link_of(html)["href"]).query)["next"] == [
        '/"><script>alert(1)</script>'
    ]


def test_button_css_class_is_added_to_its_own():
    link = link_of(render('{% ftauth_button "individu" css_class="wide primary" %}'))
    assert link["class"].split() == [
        "ftauth-button",
        "ftauth-button--individu",
        "wide",
        "primary",
    ]


def test_button_label_can_be_replaced_and_a_variable_is_escaped():
    html = render('{% ftauth_button "individu" label="Mon espace" %}')
    assert "".join(parse(html).text).strip() == "Mon espace"
    html = render('{% ftauth_button "individu" label=name %}', name="<b>Mon espace</b>")
    assert "&lt;b&gt;Mon espace&lt;/b&gt;" in html


def test_login_url_tag_gives_the_bare_url():
    assert render('{% ftauth_login_url "partenaire" %}') == "/ftauth/login/partenaire/"


def test_login_url_tag_encodes_next_and_can_be_stored():
    html = render(
        '{% ftauth_login_url "individu" next="/profile/?a=1&b=2" as url %}<a href="{{ url }}">x</a>'
    )
    href = link_of(html)["href"]
    assert href == "/ftauth/login/individu/?next=%2Fprofile%2F%3Fa%3D1%26b%3D2"


def test_unknown_realm_is_a_template_error_in_debug(settings):
    settings.DEBUG = True
    with pytest.raises(TemplateSyntaxError, match="unknown realm 'candidat'"):
        render('{% ftauth_button "candidat" %}')
    with pytest.raises(TemplateSyntaxError, match="unknown realm 'candidat'"):
        render('{% ftauth_login_url "candidat" %}')


def test_disabled_realm_is_a_template_error_in_debug(settings, only_individu):
    settings.DEBUG = True
    with pytest.raises(TemplateSyntaxError, match="'employeur' is not enabled"):
        render('{% ftauth_button "employeur" %}')


def test_unknown_realm_is_left_out_and_logged_without_debug(settings, only_individu, caplog):
    settings.DEBUG = False
    with caplog.at_level(logging.ERROR, logger="ftauth.templatetags"):
        html = render('<p>{% ftauth_button "employeur" %}{% ftauth_login_url "x" %}</p>')
    assert html == "<p></p>"
    messages = [r.getMessage() for r in caplog.records]
    assert any("'employeur' is not enabled" in m for m in messages)
    assert any("unknown realm 'x'" in m for m in messages)


def test_button_is_in_french_by_default():
    assert "Se connecter avec France Travail" in render('{% ftauth_button "individu" %}')


@pytest.mark.parametrize(
    ("realm", "label"),
    [
        ("individu", "Sign in with France Travail"),
        ("employeur", "Recruiter: sign in with France Travail"),
        ("partenaire", "Partner: sign in with France Travail"),
    ],
)
def test_button_is_in_english_under_english(realm, label):
    with translation.override("en"):
        html = render("{% ftauth_button realm %}", realm=realm)
    assert "".join(parse(html).text).strip() == label


def test_css_tag_links_the_apps_own_stylesheet():
    html = render("{% ftauth_css %}")
    assert html == '<link rel="stylesheet" href="/static/ftauth/ftauth.css">'


def test_stylesheet_loads_nothing_from_elsewhere_and_has_a_focus_outline():
    css = (Path(ftauth.__file__).parent / "static/ftauth/ftauth.css").read_text()
    assert not re.search(r"@import|url\(", css)
    assert re.search(r"\.ftauth-button:focus-visible[^{]*\{[^}]*outline: 3px solid", css)
