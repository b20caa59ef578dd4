"""Realistic French papers rendered as PDFs (WeasyPrint), for the reading checks.

Each is laid out like the real one (headings, tables, the MRZ in OCR-B-like monospace) so the
text a reader gets comes out of a real PDF text layer, not from a string we typed for it.
"""

from __future__ import annotations

from pathlib import Path

import pypdfium2
from PIL import Image

from portal.packs.rendering import _import_weasyprint

STYLE = """
@page { size: A4; margin: 18mm }
body { font-family: 'DejaVu Sans', sans-serif; font-size: 10pt }
table { border-collapse: collapse; width: 100% }
td, th { border: 1px solid #999; padding: 3px 6px; text-align: left }
.mrz { font-family: 'DejaVu Sans Mono', monospace; font-size: 11pt; white-space: pre }
"""

VALID_IBAN = "FR76 3000 6000 0112 3456 7890 189"
BROKEN_IBAN = "FR76 3000 6000 0112 3456 7980 189"  # two digits swapped

TAX_NOTICE = """
<p>DIRECTION GÉNÉRALE DES FINANCES PUBLIQUES</p>
<h1>AVIS D'IMPÔT 2026</h1>
<h2>IMPÔT SUR LE REVENU — Revenus de 2025</h2>
<p>Numéro fiscal : 30 12 345 678 901 · Référence de l'avis : 26 75 A123456 12</p>
<p>M. MARTIN Karim, 12 rue des Lilas, 93200 Saint-Denis</p>
<table>
<tr><th>Détail</th><th>Montant</th></tr>
<tr><td>Nombre de parts</td><td>2,5</td></tr>
<tr><td>Revenu brut global</td><td>21 480 €</td></tr>
<tr><td>Revenu fiscal de référence</td><td>19 332 €</td></tr>
<tr><td>Impôt sur le revenu net</td><td>0 €</td></tr>
</table>
<p>Date de mise en recouvrement : 31/07/2026</p>
"""

STATEMENT = """
<h1>RELEVÉ DE COMPTE</h1>
<p>Banque Populaire Rives de Paris — Compte courant n° 00012345678</p>
<p>Période du 01/03/2026 au 31/03/2026</p>
<table>
<tr><th>Date</th><th>Opérations</th><th>Débit</th><th>Crédit</th></tr>
<tr><td></td><td>Ancien solde créditeur</td><td></td><td>412,30</td></tr>
<tr><td>02/03</td><td>VIR CAF PRESTATIONS</td><td></td><td>634,12</td></tr>
<tr><td>05/03</td><td>PRLV EDF</td><td>78,40</td><td></td></tr>
<tr><td>15/03</td><td>CB CARREFOUR</td><td>52,87</td><td></td></tr>
</table>
<p>Nouveau solde créditeur : 915,15</p>
"""

RIB = """
<h1>RELEVÉ D'IDENTITÉ BANCAIRE</h1>
<p>Titulaire du compte : M. MARTIN KARIM</p>
<p>Domiciliation : LA BANQUE POSTALE PARIS CENTRE</p>
<table><tr><th>Code banque</th><th>Code guichet</th><th>N° de compte</th><th>Clé</th></tr>
<tr><td>30006</td><td>00001</td><td>12345678901</td><td>89</td></tr></table>
<p>IBAN : {iban} BIC : AGRIFRPP</p>
"""

ENERGY_BILL = """
<h1>Votre facture d'électricité</h1>
<p>Date de facture : {issued}</p>
<p>Point de livraison : 09 876 543 210 123 · Consommation : 312 kWh</p>
<p>Abonnement Tarif Bleu 6 kVA — Montant TTC : 84,20 €</p>
"""

PASSPORT = """
<p>RÉPUBLIQUE FRANÇAISE · PASSEPORT / PASSPORT</p>
<p>Nom : MARTIN · Prénoms : KARIM, YANIS</p>
<div class="mrz">{mrz}</div>
"""


def render(body: str, path: Path) -> Path:
    """Write `body` as a one-page A4 PDF at `path`."""
    # Through the packs' import, which undoes the global WeasyPrint flips on import
    # (Pillow's LOAD_TRUNCATED_IMAGES): screening tests in the same run rely on it.
    _import_weasyprint()
    from weasyprint import HTML

    HTML(string=f"<html><head><style>{STYLE}</style></head><body>{body}</body></html>").write_pdf(
        path
    )
    return path


def photo(pdf: Path) -> Image.Image:
    """The first page at ~300 dpi as a phone would take it: on a desk, slightly turned,
    unevenly lit, 4000x3000 (12 MP)."""
    document = pypdfium2.PdfDocument(str(pdf))
    try:
        page = document[0].render(scale=300 / 72).to_pil().convert("RGB")
    finally:
        document.close()
    page = page.rotate(3, expand=True, fillcolor=(90, 70, 50))
    desk = Image.new("RGB", (3000, 4000), (90, 70, 50))
    page.thumbnail((2800, 3800))
    desk.paste(page, ((3000 - page.width) // 2, (4000 - page.height) // 2))
    shade = Image.linear_gradient("L").resize(desk.size).point(lambda v: 255 - v // 4)
    desk = Image.composite(desk, Image.new("RGB", desk.size, (0, 0, 0)), shade)
    return desk.rotate(90, expand=True)
