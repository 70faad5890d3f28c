"""Synthetic job offers shaped like France Travail's "Offres d'emploi v2".

Deterministic (the same 120 offers every time), so tests can count on them.
Search follows the real API: ``motsCles`` (comma-separated, all must match),
``typeContrat`` (comma-separated), ``range=first-last`` (at most 150 offers,
first at most 3000); the answer is 200 when every match is returned, 206 with
``Content-Range`` when only a part is, 204 when nothing matches.
"""

from __future__ import annotations

import functools
import unicodedata
from datetime import UTC, datetime, timedelta

MAX_RANGE = 150
MAX_FIRST = 3000

_JOBS = (
    ("M1805", "Développeur / Développeuse web", "Études et développement informatique"),
    ("K2204", "Agent / Agente d'entretien de locaux", "Nettoyage de locaux"),
    ("J1501", "Aide-soignant / Aide-soignante", "Soins d'hygiène, de confort du patient"),
    ("G1602", "Cuisinier / Cuisinière", "Personnel de cuisine"),
    ("N1103", "Préparateur / Préparatrice de commandes", "Magasinage et préparation de commandes"),
    ("D1106", "Vendeur / Vendeuse en alimentation", "Vente en alimentation"),
    ("F1703", "Maçon / Maçonne", "Maçonnerie"),
    ("M1607", "Secrétaire", "Secrétariat"),
    ("N4101", "Conducteur / Conductrice poids lourd", "Conduite de transport de marchandises"),
    ("K2111", "Formateur / Formatrice", "Formation professionnelle"),
    ("M1203", "Comptable", "Comptabilité"),
    ("I1304", "Technicien / Technicienne de maintenance", "Installation et maintenance"),
)
_PLACES = (
    ("75 - Paris 11e Arrondissement", "75011", "75111", 48.859, 2.379),
    ("69 - Lyon 3e Arrondissement", "69003", "69383", 45.760, 4.849),
    ("13 - Marseille 1er Arrondissement", "13001", "13201", 43.300, 5.383),
    ("31 - Toulouse", "31000", "31555", 43.604, 1.444),
    ("44 - Nantes", "44000", "44109", 47.218, -1.553),
    ("59 - Lille", "59000", "59350", 50.629, 3.057),
    ("67 - Strasbourg", "67000", "67482", 48.573, 7.752),
    ("33 - Bordeaux", "33000", "33063", 44.837, -0.579),
    ("35 - Rennes", "35000", "35238", 48.117, -1.677),
    ("974 - Saint-Denis", "97400", "97411", -20.882, 55.450),
)
_COMPANIES = ("Atelier Lumière", "Coopérative du Val", "Services Horizon", "Groupe Hexagone")
_CONTRACTS = (
    ("CDI", "Contrat à durée indéterminée"),
    ("CDD", "Contrat à durée déterminée - 6 Mois"),
    ("MIS", "Mission intérimaire - 3 Mois"),
)
_EPOCH = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def _fold(text: str) -> str:
    """Lower case without accents, for a forgiving keyword search."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


@functools.cache
def all_offers() -> tuple[dict, ...]:
    offers = []
    for n in range(len(_JOBS) * len(_PLACES)):
        rome, title, rome_label = _JOBS[n % len(_JOBS)]
        place, postcode, commune, lat, lon = _PLACES[(n // len(_JOBS)) % len(_PLACES)]
        company = _COMPANIES[n % len(_COMPANIES)]
        contract, contract_label = _CONTRACTS[n % len(_CONTRACTS)]
        created = _EPOCH + timedelta(hours=7 * n)
        offers.append(
            {
                "id": f"{100 + n:03d}SBXQ",
                "intitule": title,
                "description": (
                    f"{company} recrute un(e) {title.lower()} ({rome_label.lower()}). "
                    "Offre fictive du serveur de test ftauth."
                ),
                "dateCreation": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "dateActualisation": (created + timedelta(days=2)).strftime(
                    "%Y-%m-%dT%H:%M:%S.000Z"
                ),
                "lieuTravail": {
                    "libelle": place,
                    "latitude": lat,
                    "longitude": lon,
                    "codePostal": postcode,
                    "commune": commune,
                },
                "romeCode": rome,
                "romeLibelle": rome_label,
                "appellationlibelle": title,
                "entreprise": {"nom": company, "entrepriseAdaptee": False},
                "typeContrat": contract,
                "typeContratLibelle": contract_label,
                "natureContrat": "Contrat travail",
                "experienceExige": "D",
                "experienceLibelle": "Débutant accepté",
                "salaire": {"libelle": "Mensuel de 1900.00 Euros à 2400.00 Euros sur 12 mois"},
                "dureeTravailLibelle": "35H Travail en journée",
                "alternance": False,
                "nombrePostes": 1 + n % 3,
                "accessibleTH": n % 2 == 0,
                "origineOffre": {"origine": "1", "urlOrigine": ""},
            }
        )
    return tuple(offers)


class InvalidSearch(ValueError):
    """A search parameter France Travail would refuse with 400."""


def parse_range(value: str | None) -> tuple[int, int]:
    if not value:
        return 0, MAX_RANGE - 1
    try:
        first_s, last_s = value.split("-", 1)
        first, last = int(first_s), int(last_s)
    except ValueError:
        raise InvalidSearch("range must look like 0-149") from None
    if first < 0 or last < first or last - first + 1 > MAX_RANGE or first > MAX_FIRST:
        raise InvalidSearch(f"range spans at most {MAX_RANGE} offers, from at most {MAX_FIRST}")
    return first, last


def search(mots_cles: str | None, type_contrat: str | None) -> list[dict]:
    words = [_fold(w.strip()) for w in (mots_cles or "").split(",") if w.strip()]
    contracts = {c.strip() for c in (type_contrat or "").split(",") if c.strip()}
    found = []
    for offer in all_offers():
        text = _fold(
            f"{offer['intitule']} {offer['description']} {offer['romeLibelle']} "
            f"{offer['lieuTravail']['libelle']}"
        )
        if all(w in text for w in words) and (not contracts or offer["typeContrat"] in contracts):
            found.append(offer)
    return found


def get_offer(offer_id: str) -> dict | None:
    return next((o for o in all_offers() if o["id"] == offer_id), None)
