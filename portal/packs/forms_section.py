"""The pack's prefilled official forms: a notice page, then the form, one section each.

The form goes in flattened (its fields drawn into the page): a pack keeps nothing interactive.
The notice lists what Pochette could not fill, for the client to write by hand.
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pikepdf
from flask_babel import gettext as _

from portal.cases.models import Case
from portal.forms.operations import FormUnavailable, case_forms, fill_case_form
from portal.packs.assembling import Part
from portal.packs.rendering import render_pdf, template


def section_title() -> str:
    return _("Formulaire pré-rempli : vérifiez chaque case, signez, datez")


def form_parts(case: Case, today: date, workdir: Path) -> list[Part]:
    """One PDF per form of the case (notice + flattened form), written in workdir."""
    parts = []
    for spec in case_forms(case, today):
        try:
            filled = fill_case_form(case, spec, today)
        except FormUnavailable:
            continue  # not shipped and not uploaded yet: the guide still tells what to do
        notice = render_pdf(
            template("packs/pdf/form_notice.html").render(form=filled, title=section_title())
        )
        path = workdir / f"form-{spec.code}.pdf"
        with (
            pikepdf.open(io.BytesIO(notice)) as pdf,
            pikepdf.open(io.BytesIO(filled.flat())) as form,
        ):
            pdf.pages.extend(form.pages)
            pdf.save(path)
        parts.append(Part(f"{section_title()} (cerfa {spec.cerfa})", path))
    return parts
