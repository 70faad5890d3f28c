"""Who lives in the sandbox: its hosts, realms, scopes and test personas.

The hosts mirror France Travail's servers: ``authentification-candidat``
serves the realm ``individu``, ``entreprise`` serves ``employeur`` and
``partenaire``. Claims follow FRANCE_TRAVAIL.md: ``gender`` is ``male`` or
``female``, ``email_verified`` is the *string* ``"true"``, and a job seeker
whose account is not validated has no ``email``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

INDIVIDU_HOST = "authentification-candidat"
ENTREPRISE_HOST = "entreprise"
API_HOST = "api"

HOST_REALMS: dict[str, tuple[str, ...]] = {
    INDIVIDU_HOST: ("individu",),
    ENTREPRISE_HOST: ("employeur", "partenaire"),
}
REALM_HOST: dict[str, str] = {
    realm: host for host, realms in HOST_REALMS.items() for realm in realms
}

# Scopes a user may consent to, per realm, with the label of the consent page: what the
# application asks to do ("L’application … demande à : vous identifier, connaître…").
USER_SCOPES: dict[str, dict[str, Any]] = {
    "individu": {
        "openid": _("Vous identifier"),
        "profile": _("Connaître votre nom, votre prénom et votre civilité"),
        "email": _("Connaître votre adresse électronique"),
        "api_peconnect-individuv1": _("Lire votre identité avec l’API Individu"),
        "api_peconnect-statutv1": _("Lire votre statut de demandeur d’emploi avec l’API Statut"),
        "statut": _("Connaître votre statut de demandeur d’emploi"),
        "api_peconnect-coordonneesv1": _("Lire vos coordonnées avec l’API Coordonnées"),
        "coordonnees": _("Connaître vos coordonnées"),
        "api_peconnect-datenaissancev1": _(
            "Lire votre date de naissance avec l’API Date de naissance"
        ),
        "datenaissance": _("Connaître votre date de naissance"),
    },
    "employeur": {
        "openid": _("Vous identifier"),
        "profile": _("Connaître votre nom et votre prénom"),
        "email": _("Connaître votre adresse électronique"),
        "habilitation": _("Connaître vos habilitations de recruteur"),
        "api_peconnect-entreprisev1": _("Lire votre identité avec l’API Entreprise"),
    },
    "partenaire": {
        "openid": _("Vous identifier"),
        "profile": _("Connaître votre nom et votre prénom"),
        "email": _("Connaître votre adresse électronique"),
    },
}

# Scopes of application tokens (client credentials, realm /partenaire).
APPLICATION_SCOPES = frozenset(
    {
        "api_offresdemploiv2",
        "o2dsoffre",
        "api_romev1",
        "nomenclatureRome",
        "api_labonneboitev1",
    }
)


def scope_label(realm: str, scope: str) -> str:
    """The consent page's wording for ``scope``."""
    if scope.startswith("application_"):
        return str(_("Identifier l’application auprès de France Travail"))
    return str(USER_SCOPES.get(realm, {}).get(scope, scope))


def is_known_user_scope(realm: str, scope: str, client_id: str) -> bool:
    # Older integrations add ``application_<client_id>`` to every request.
    return scope in USER_SCOPES.get(realm, {}) or scope == f"application_{client_id}"


@dataclass(frozen=True)
class Persona:
    """A test account of one realm; ``claims`` are what userinfo returns."""

    sub: str
    realm: str
    label: str
    claims: Mapping[str, str] = field(default_factory=dict)

    def get_user_id(self) -> str:
        # authlib's grants ask the "user" for an id.
        return self.sub

    def claims_for(self, scopes: set[str]) -> dict[str, str]:
        """``sub`` plus the claims the granted scopes allow (OIDC Core 5.4)."""
        allowed = {"sub"}
        if "profile" in scopes:
            allowed |= {"given_name", "family_name", "gender"}
        if "email" in scopes:
            allowed |= {"email", "email_verified"}
        if "habilitation" in scopes:
            allowed.add("habilitation")
        if "api_peconnect-individuv1" in scopes:
            allowed.add("idIdentiteExterne")
        result = {"sub": self.sub}
        result.update({k: v for k, v in self.claims.items() if k in allowed})
        return result


PERSONAS: tuple[Persona, ...] = (
    Persona(
        sub="sandbox-individu-camille",
        realm="individu",
        label="Camille Martin, demandeuse d’emploi",
        claims={
            "given_name": "Camille",
            "family_name": "Martin",
            "gender": "female",
            "email": "camille.martin@example.test",
            "idIdentiteExterne": "7b3e8a52-4c1f-4d2a-9a57-0c1d3f6b9e21",
        },
    ),
    Persona(
        sub="sandbox-individu-karim",
        realm="individu",
        label="Karim Benali, demandeur d’emploi",
        claims={
            "given_name": "Karim",
            "family_name": "Benali",
            "gender": "male",
            "email": "karim.benali@example.test",
            "idIdentiteExterne": "c4f09d1e-2b6a-4e8f-8d3c-5a7e1b2f4c60",
        },
    ),
    Persona(
        sub="sandbox-individu-lea",
        realm="individu",
        label="Léa Dubois, compte non validé (sans adresse électronique)",
        claims={
            "given_name": "Léa",
            "family_name": "Dubois",
            "gender": "female",
            "idIdentiteExterne": "e91a7c3b-8f2d-4b6e-a1c4-3d5f7e9b0a12",
        },
    ),
    Persona(
        sub="sandbox-employeur-sophie",
        realm="employeur",
        label="Sophie Leroy, recruteuse certifiée",
        claims={
            "given_name": "Sophie",
            "family_name": "Leroy",
            "email": "sophie.leroy@entreprise.example.test",
            "email_verified": "true",
            "habilitation": "recruteurcertifie",
        },
    ),
    Persona(
        sub="sandbox-employeur-thomas",
        realm="employeur",
        label="Thomas Moreau, recruteur (adresse non vérifiée)",
        claims={
            "given_name": "Thomas",
            "family_name": "Moreau",
            "email": "thomas.moreau@entreprise.example.test",
            "email_verified": "false",
            "habilitation": "recruteur",
        },
    ),
    Persona(
        sub="sandbox-partenaire-nadia",
        realm="partenaire",
        label="Nadia Petit, conseillère d’une structure partenaire",
        claims={
            "given_name": "Nadia",
            "family_name": "Petit",
            "email": "nadia.petit@partenaire.example.test",
        },
    ),
)

_BY_SUB = {persona.sub: persona for persona in PERSONAS}


def personas_of(realm: str) -> tuple[Persona, ...]:
    return tuple(p for p in PERSONAS if p.realm == realm)


def get_persona(sub: str, realm: str | None = None) -> Persona | None:
    """The persona called ``sub`` (in ``realm`` when given), or None."""
    persona = _BY_SUB.get(sub)
    if persona is None or (realm is not None and persona.realm != realm):
        return None
    return persona


def parse_realm(value: str | None) -> str | None:
    """The realm name from a ``realm`` parameter: ``/individu`` (or ``individu``)."""
    if not value:
        return None
    name = value[1:] if value.startswith("/") else value
    return name if name in REALM_HOST else None
