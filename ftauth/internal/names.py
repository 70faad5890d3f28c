"""What each realm is called in front of people (never the raw realm code)."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

REALM_LABELS: dict[str, Promise] = {
    "individu": _("espace candidat"),
    "employeur": _("espace recruteur"),
    "partenaire": _("espace partenaire"),
    "agent": _("espace agent"),
    "proconnect": _("ProConnect, espace professionnel"),
}


def realm_label(realm: str) -> str:
    """« espace candidat » for ``individu``; the code itself for a realm without a name."""
    label = REALM_LABELS.get(realm)
    return str(label) if label is not None else realm
