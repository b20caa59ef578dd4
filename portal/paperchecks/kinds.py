"""What kind of paper a text is, from keywords, and whether the checklist line wanted it.

A kind wins with at least two of its phrases, or one of its `decisive` ones (the title only
that paper carries); a machine-readable zone decides between identity papers. The lines'
expected kinds are a table keyed by the catalog's document codes (lines not listed are not
compared: "Justificatifs des ressources" may be anything).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.paperchecks.findings import Expectation, Finding, folded


@dataclass(frozen=True)
class Kind:
    code: str
    label: object  # lazy French, with its article: "un avis d'impôt"
    phrases: tuple[str, ...]  # folded (lower case, no accents)
    decisive: tuple[str, ...] = ()


KINDS = (
    Kind(
        "avis_impot",
        _l("un avis d’impôt"),
        (
            "revenu fiscal de reference",
            "impot sur le revenu",
            "direction generale des finances publiques",
            "nombre de parts",
            "numero fiscal",
            "revenus de",
        ),
        decisive=("avis d'impot", "avis d’impot", "avis de situation declarative"),
    ),
    Kind(
        "releve_bancaire",
        _l("un relevé bancaire"),
        ("solde", "operations", "debit", "credit", "ancien solde", "nouveau solde"),
        decisive=("releve de compte", "releve bancaire", "extrait de compte"),
    ),
    Kind(
        "rib",
        _l("un RIB"),
        ("iban", "bic", "titulaire du compte", "domiciliation", "code banque", "code guichet"),
        decisive=("releve d'identite bancaire", "releve d’identite bancaire"),
    ),
    Kind(
        "carte_identite",
        _l("une carte d’identité"),
        ("republique francaise", "prenoms", "ne(e) le", "date de naissance"),
        decisive=("carte nationale d'identite", "carte nationale d’identite", "identity card"),
    ),
    Kind(
        "passeport",
        _l("un passeport"),
        ("passport", "code du pays", "date de delivrance"),
        decisive=("passeport",),
    ),
    Kind(
        "titre_sejour",
        _l("un titre de séjour"),
        ("residence permit", "type de titre", "remarques"),
        decisive=("titre de sejour", "carte de resident", "carte de sejour"),
    ),
    Kind(
        "facture_energie",
        _l("une facture d’énergie"),
        ("kwh", "electricite", "gaz", "point de livraison", "consommation", "abonnement"),
        decisive=("facture d'electricite", "facture d’electricite", "facture de gaz"),
    ),
    Kind(
        "attestation_caf",
        _l("une attestation de la CAF"),
        ("allocations familiales", "caf", "numero allocataire", "droits", "prestations"),
        decisive=("attestation de paiement", "attestation de droits", "quotient familial"),
    ),
    Kind(
        "bulletin_salaire",
        _l("un bulletin de salaire"),
        ("salaire de base", "net a payer", "cotisations", "employeur", "brut", "urssaf"),
        decisive=("bulletin de salaire", "bulletin de paie", "fiche de paie"),
    ),
)
BY_CODE = {k.code: k for k in KINDS}

IDENTITY = ("carte_identite", "passeport", "titre_sejour")
ADDRESS = ("facture_energie", "avis_impot", "attestation_caf")
# The catalog's document codes (portal/checklists/catalog/*.yaml) and the kinds they accept.
EXPECTED: dict[str, tuple[str, ...]] = {
    "avis_impot": ("avis_impot",),
    "rib": ("rib",),
    "releves_bancaires": ("releve_bancaire",),
    "fiches_de_paie": ("bulletin_salaire",),
    "titre_sejour": ("titre_sejour",),
    "ancien_passeport": ("passeport",),
    "ancienne_carte": ("carte_identite",),
    "piece_identite": IDENTITY,
    "piece_identite_premiere": IDENTITY,
    "piece_identite_parent": IDENTITY,
    "justificatif_domicile": ADDRESS,
}


def guess_kind(text: str) -> tuple[Kind | None, list[str]]:
    """The kind the text reads as, and the phrases that made it (the evidence)."""
    body = folded(text)
    best: tuple[int, Kind | None, list[str]] = (0, None, [])
    for kind in KINDS:
        hits = [p for p in kind.decisive if p in body]
        score = 2 * len(hits)
        more = [p for p in kind.phrases if p in body]
        score += len(more)
        if score >= 2 and score > best[0]:
            best = (score, kind, hits + more)
    return best[1], best[2]


def read_kind(text: str, expect: Expectation, mrz_kind: str | None = None) -> list[Finding]:
    """A finding when the paper reads as another kind than the line asks for."""
    wanted = EXPECTED.get(expect.item_code or "")
    kind, phrases = guess_kind(text)
    if mrz_kind is not None and (kind is None or kind.code not in IDENTITY):
        kind, phrases = BY_CODE[mrz_kind], ["bande de lecture"]
    if kind is None or wanted is None:
        return []
    evidence = ", ".join(f"« {p} »" for p in phrases)
    if kind.code in wanted:
        return [
            Finding(
                "kind_matches",
                True,
                _("Ceci ressemble bien à %(kind)s.", kind=kind.label),
                evidence=evidence,
            )
        ]
    return [
        Finding(
            "kind_mismatch",
            False,
            _(
                "Ceci ressemble à %(kind)s, la ligne demande %(wanted)s.",
                kind=kind.label,
                wanted=_(" ou ").join(str(BY_CODE[w].label) for w in wanted),
            ),
            evidence=evidence,
        )
    ]
