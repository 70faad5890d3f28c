"""Shared fixtures.

``sandbox`` serves the whole demo URLconf (ftauth and its sandbox identity
server) over real HTTP on a live server, and points every realm and the API at
it: ``{live}/sandbox/authentification-candidat`` (individu),
``{live}/sandbox/entreprise`` (employeur, partenaire), ``{live}/sandbox/api``.
"""

from __future__ import annotations

import copy

import pytest
from django.conf import settings

# The scripted identity server and its fixtures (``idp``) for the sign-in tests;
# the stateful one (``fakeop``) and the session engines for the consent-lifecycle tests;
# the sandbox's tamper modes (``tamper``) for the tests of ftauth's defences;
# the ProConnect stand-in (``proconnect``) for the professionals' sign-in; the
# quota's schedule on the test's clock (``pacing``).
pytest_plugins = [
    "tests.idp",
    "tests.fakeop",
    "tests.lifecycle",
    "tests.tamper",
    "tests.proconnect_op",
    "tests.pacing",
]


def sandbox_ftauth_settings(base_url: str, **overrides) -> dict:
    conf = copy.deepcopy(settings.FTAUTH)
    conf["API_URL"] = f"{base_url}/sandbox/api"
    conf["REALMS"] = {
        "individu": {"server": f"{base_url}/sandbox/authentification-candidat"},
        "employeur": {"server": f"{base_url}/sandbox/entreprise"},
        "partenaire": {"server": f"{base_url}/sandbox/entreprise"},
    }
    conf.update(overrides)
    return conf


@pytest.fixture
def sandbox(live_server, settings):
    """The live server's base URL, with FTAUTH pointing at its sandbox."""
    # Each test's database is flushed, so the sandbox signs with new keys:
    # JWKS and discovery cached by an earlier test would no longer match.
    from django.core.cache import caches

    for cache in caches.all():
        cache.clear()
    settings.FTAUTH = sandbox_ftauth_settings(live_server.url)
    return live_server.url
