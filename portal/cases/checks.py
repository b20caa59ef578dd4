"""Checks before filing: blocking where the portal would refuse, warnings where a person should
look again, and estimates where the catalog has the figures.

The rules are a small fixed vocabulary here; each procedure's catalog file lists which ones
apply and with which parameters (``checks:``, validated at start-up). Every check returns at
least one outcome, so a page or the command line can say "ok" as well as what is wrong.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from flask import g
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.cases.models import Case, CaseStatus, ChecklistItem, ItemKind
from portal.checklists.catalog import CheckSpec, Procedure, ValueSpec, catalog
from portal.checklists.values import format_number
from portal.db import db

OK = "ok"
WARNING = "warning"
BLOCKING = "blocking"
ESTIMATE = "estimate"
# The command line's exit code for the worst outcome standing.
EXIT_CODES: Mapping[str, int] = {OK: 0, ESTIMATE: 0, WARNING: 1, BLOCKING: 2}
_SEVERITY = {OK: 0, ESTIMATE: 0, WARNING: 1, BLOCKING: 2}


@dataclass(frozen=True)
class CheckOutcome:
    """One check's result: its rule, its level and the French message a person reads."""

    rule: str
    level: str
    message: str
    item: str | None = None  # the value code it is about, when one


@dataclass(frozen=True)
class _Context:
    case: Case
    procedure: Procedure
    specs: Mapping[str, ValueSpec]  # value specs of the items on this case
    amounts: Mapping[str, Decimal]  # the amounts typed, by value code
    labels: Mapping[str, str]
    earlier: list[Case]  # the client's earlier cases of the procedure, most recent first


def _amount(raw: str | None) -> Decimal | None:
    if raw is None or raw == "":
        return None
    try:
        number = Decimal(raw)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _euros(number: Decimal) -> str:
    return f"{format_number(number.quantize(Decimal('1'), rounding=ROUND_HALF_UP))}\u00a0€"


def _amounts_of(items: Iterable[ChecklistItem], specs: Mapping[str, ValueSpec]) -> dict:
    amounts: dict[str, Decimal] = {}
    for item in items:
        spec = specs.get(item.code)
        if item.kind == ItemKind.value and spec is not None and spec.type == "amount":
            number = _amount(item.value)
            if number is not None:
                amounts[item.code] = number
    return amounts


def _context(
    case: Case,
    proposed: Mapping[str, str] | None = None,
    pool: list[Case] | None = None,
) -> _Context:
    procedure = catalog().get(case.procedure_code)
    specs = {v.code: v for v in procedure.values}
    on_case = {i.code: i for i in case.items if i.kind == ItemKind.value}
    specs = {code: spec for code, spec in specs.items() if code in on_case}
    amounts = _amounts_of(on_case.values(), specs)
    for code, raw in (proposed or {}).items():
        number = _amount(raw)
        if code in specs and number is not None:
            amounts[code] = number
    return _Context(
        case=case,
        procedure=procedure,
        specs=specs,
        amounts=amounts,
        labels={code: item.label for code, item in on_case.items()},
        earlier=(
            []
            if not procedure.checks
            else _earlier_cases(case)
            if pool is None
            else _earlier_in(case, pool)
        ),
    )


def _earlier_cases(case: Case, limit: int = 24) -> list[Case]:
    """The client's earlier cases of the same procedure, most recent first (cancelled ones out)."""
    stmt = (
        select(Case)
        .where(
            Case.org_id == case.org_id,
            Case.client_id == case.client_id,
            Case.procedure_code == case.procedure_code,
            Case.period_start_on < case.period_start_on,
            Case.status != CaseStatus.cancelled,
        )
        .order_by(Case.period_start_on.desc())
        .limit(limit)
    )
    return list(db.session.scalars(stmt))


def _earlier_in(case: Case, pool: list[Case], limit: int = 24) -> list[Case]:
    """`_earlier_cases` read from the client's cases already loaded (most recent first)."""
    return [c for c in pool if c.period_start_on < case.period_start_on][:limit]


def _client_pool(case: Case) -> list[Case]:
    """The client's cases of the procedure (cancelled ones out, with their lines), loaded once
    per request: a page that shows the checks of many cases reads them in one statement."""
    pools: dict[tuple[int, int, str], list[Case]] = g.setdefault("checks_pools", {})
    key = (case.org_id, case.client_id, case.procedure_code)
    if key not in pools:
        stmt = (
            select(Case)
            .where(
                Case.org_id == case.org_id,
                Case.client_id == case.client_id,
                Case.procedure_code == case.procedure_code,
                Case.status != CaseStatus.cancelled,
            )
            .order_by(Case.period_start_on.desc())
            .options(selectinload(Case.items))
        )
        pools[key] = list(db.session.scalars(stmt))
    return pools[key]


# --- the rules -------------------------------------------------------------------------------


def _per_amount(
    rule: str,
    ctx: _Context,
    wrong: Callable[[ValueSpec, Decimal], str | None],
    ok: str,
) -> list[CheckOutcome]:
    found = [
        CheckOutcome(rule, BLOCKING, message, code)
        for code, number in ctx.amounts.items()
        if (message := wrong(ctx.specs[code], number)) is not None
    ]
    return found or [CheckOutcome(rule, OK, ok)]


def not_negative(ctx: _Context, spec: CheckSpec) -> list[CheckOutcome]:
    def wrong(value: ValueSpec, number: Decimal) -> str | None:
        if number >= 0:
            return None
        return _(
            "« %(label)s » est négatif (%(amount)s) : le site refuse un montant négatif.",
            label=ctx.labels[value.code],
            amount=_euros(number),
        )

    return _per_amount(spec.rule, ctx, wrong, _("Aucun montant négatif."))


def whole_euro(ctx: _Context, spec: CheckSpec) -> list[CheckOutcome]:
    def wrong(value: ValueSpec, number: Decimal) -> str | None:
        if (value.validation or {}).get("rounding", "euro") != "euro":
            return None
        if number == number.to_integral_value():
            return None
        return _(
            "« %(label)s » n'est pas un nombre entier d'euros : le site attend un montant "
            "arrondi à l'euro.",
            label=ctx.labels[value.code],
        )

    return _per_amount(spec.rule, ctx, wrong, _("Les montants sont en euros entiers."))


def category_max(ctx: _Context, spec: CheckSpec) -> list[CheckOutcome]:
    def wrong(value: ValueSpec, number: Decimal) -> str | None:
        high = (value.validation or {}).get("max")
        if high is None or number <= Decimal(str(high)):
            return None
        return _(
            "« %(label)s » dépasse le maximum accepté (%(max)s).",
            label=ctx.labels[value.code],
            max=_euros(Decimal(str(high))),
        )

    return _per_amount(spec.rule, ctx, wrong, _("Aucun montant au-dessus du maximum."))


def every_category(ctx: _Context, spec: CheckSpec) -> list[CheckOutcome]:
    """A client with several activities declares each category, 0 included."""
    activities = ctx.case.client.activities or []
    if len(activities) < 2:
        return [CheckOutcome(spec.rule, OK, _("Une seule activité : une seule catégorie."))]
    missing = [
        CheckOutcome(
            spec.rule,
            BLOCKING,
            _(
                "Il manque « %(label)s » : avec plusieurs activités, chaque catégorie est "
                "déclarée (0 si rien n'a été encaissé).",
                label=ctx.labels[code],
            ),
            code,
        )
        for code, value in ctx.specs.items()
        if value.required and value.type == "amount" and code not in ctx.amounts
    ]
    return missing or [CheckOutcome(spec.rule, OK, _("Chaque catégorie d'activité a un montant."))]


def against_history(ctx: _Context, spec: CheckSpec) -> list[CheckOutcome]:
    """Ten times the usual amount, or zero after months of activity: "vous êtes sûr ?"."""
    ratio = Decimal(spec.params["ratio"])
    zero_after = int(spec.params["zero_after"])
    earlier = ctx.earlier
    found: list[CheckOutcome] = []
    for code, number in ctx.amounts.items():
        history = [
            amounts[code]
            for amounts in (_amounts_of(c.items, ctx.specs) for c in earlier)
            if code in amounts
        ]
        positive = [h for h in history if h > 0]
        label = ctx.labels[code]
        if positive:
            usual = Decimal(statistics.median(positive))
            if number >= usual * ratio:
                found.append(
                    CheckOutcome(
                        spec.rule,
                        WARNING,
                        _(
                            "« %(label)s » : %(amount)s, plus de %(ratio)s fois "
                            "le montant habituel "
                            "(%(usual)s). Vous êtes sûr ?",
                            label=label,
                            amount=_euros(number),
                            ratio=ratio,
                            usual=_euros(usual),
                        ),
                        code,
                    )
                )
        recent = history[:zero_after]
        if number == 0 and len(recent) == zero_after and all(h > 0 for h in recent):
            found.append(
                CheckOutcome(
                    spec.rule,
                    WARNING,
                    _(
                        "« %(label)s » : 0 alors que les %(count)d périodes précédentes avaient un "
                        "montant. Vous êtes sûr ?",
                        label=label,
                        count=zero_after,
                    ),
                    code,
                )
            )
    return found or [CheckOutcome(spec.rule, OK, _("Les montants ressemblent aux précédents."))]


def _row_for_year(table_rows: Mapping[int, Any], year: int) -> Any:
    """The row named for this year, else for the latest earlier year, else the first one."""
    years = sorted(table_rows)
    earlier = [y for y in years if y <= year]
    return table_rows[earlier[-1] if earlier else years[0]]


def micro_ceilings(ctx: _Context, spec: CheckSpec) -> list[CheckOutcome]:
    """The year's amounts so far (earlier cases of the year and this one) against the ceilings."""
    table = ctx.procedure.tables[spec.params["table"]]
    year = ctx.case.period_start_on.year
    row = table.row(_row_for_year(spec.params["rows_by_year"], year))
    assert row is not None
    totals: dict[str, Decimal] = {}
    year_cases = [c for c in ctx.earlier if c.period_start_on.year == year]
    year_amounts = [_amounts_of(c.items, ctx.specs) for c in year_cases] + [dict(ctx.amounts)]
    found: list[CheckOutcome] = []
    for column, codes in spec.params["columns"].items():
        totals[column] = sum(
            (amounts.get(code, Decimal(0)) for amounts in year_amounts for code in codes),
            Decimal(0),
        )
        ceiling = row[column]
        if ceiling is not None and totals[column] > Decimal(str(ceiling)):
            found.append(
                CheckOutcome(
                    spec.rule,
                    WARNING,
                    _(
                        "Chiffre d'affaires %(year)d déclaré jusqu'ici : %(total)s, "
                        "au-dessus du seuil « %(column)s » (%(ceiling)s). Dépassé deux "
                        "années de suite, le régime micro "
                        "s'arrête : parlez-en avec votre accompagnant.",
                        year=year,
                        total=_euros(totals[column]),
                        column=table.columns[column],
                        ceiling=_euros(Decimal(str(ceiling))),
                    ),
                )
            )
    return found or [
        CheckOutcome(
            spec.rule,
            OK,
            _("Chiffre d'affaires %(year)d sous les seuils du régime micro.", year=year),
        )
    ]


def contributions_estimate(ctx: _Context, spec: CheckSpec) -> list[CheckOutcome]:
    """What URSSAF will ask, from the rates table: always said to be an estimate."""
    table = ctx.procedure.tables[spec.params["table"]]
    row = table.row_in_force(ctx.case.period_start_on)  # the pack's estimate reads it too
    columns = spec.params["columns"]
    if row is None or not any(code in ctx.amounts for code in columns):
        return [
            CheckOutcome(
                spec.rule,
                ESTIMATE,
                _("Estimation des cotisations : disponible quand les montants sont saisis."),
            )
        ]
    total = sum(
        (
            ctx.amounts[code] * Decimal(str(row[column])) / 100
            for code, column in columns.items()
            if code in ctx.amounts and row[column] is not None
        ),
        Decimal(0),
    )
    return [
        CheckOutcome(
            spec.rule,
            ESTIMATE,
            _(
                "Estimation des cotisations à payer : environ %(amount)s (taux %(year)s). "
                "C'est une "
                "estimation : le montant exact est celui que le site calcule.",
                amount=_euros(total),
                year=row[table.key],
            ),
        )
    ]


def liberatoire_estimate(ctx: _Context, spec: CheckSpec) -> list[CheckOutcome]:
    """The income tax paid with the contributions, for a client who chose the versement
    libératoire: each amount times its category's rate; always said to be an estimate."""
    if not ctx.case.client.versement_liberatoire:
        return [CheckOutcome(spec.rule, OK, _("Pas de versement libératoire de l'impôt."))]
    table = ctx.procedure.tables[spec.params["table"]]
    total = Decimal(0)
    for code, key in spec.params["rows"].items():
        row = table.row(key)
        rate = row[spec.params["column"]] if row is not None else None
        if code in ctx.amounts and rate is not None:
            total += ctx.amounts[code] * Decimal(str(rate)) / 100
    return [
        CheckOutcome(
            spec.rule,
            ESTIMATE,
            _(
                "Estimation du versement libératoire de l'impôt : environ %(amount)s, à payer "
                "avec les cotisations. C'est une estimation.",
                amount=_euros(total),
            ),
        )
    ]


RULES: Mapping[str, Callable[[_Context, CheckSpec], list[CheckOutcome]]] = {
    "not_negative": not_negative,
    "whole_euro": whole_euro,
    "category_max": category_max,
    "every_category": every_category,
    "against_history": against_history,
    "micro_ceilings": micro_ceilings,
    "contributions_estimate": contributions_estimate,
    "liberatoire_estimate": liberatoire_estimate,
}


# --- entry points ----------------------------------------------------------------------------


def run_checks(case: Case, proposed: Mapping[str, str] | None = None) -> list[CheckOutcome]:
    """Every check the case's procedure lists, in catalog order (empty when it lists none).

    ``proposed``: values not stored yet (the interview's review screen), by value code.
    """
    return _run(_context(case, proposed))


def page_checks(case: Case, proposed: Mapping[str, str] | None = None) -> list[CheckOutcome]:
    """`run_checks` for a page (the templates' `case_checks`): the client's earlier cases are
    read once per request and procedure, so the statements do not grow with his cases."""
    if not catalog().get(case.procedure_code).checks:
        return []
    return _run(_context(case, proposed, _client_pool(case)))


def _run(ctx: _Context) -> list[CheckOutcome]:
    outcomes: list[CheckOutcome] = []
    for spec in ctx.procedure.checks:
        outcomes.extend(RULES[spec.rule](ctx, spec))
    return outcomes


def worst_level(outcomes: Iterable[CheckOutcome]) -> str:
    """OK, WARNING or BLOCKING: what stands once every outcome is counted."""
    worst = OK
    for outcome in outcomes:
        if _SEVERITY[outcome.level] > _SEVERITY[worst]:
            worst = outcome.level
    return worst


def standing(outcomes: Iterable[CheckOutcome]) -> list[CheckOutcome]:
    """The outcomes a person must look at (warnings and blocking), blocking first."""
    return sorted(
        (o for o in outcomes if o.level in (WARNING, BLOCKING)),
        key=lambda o: -_SEVERITY[o.level],
    )
