"""Issue 15, the journey as people live it: cases move by themselves, a new client gets his
cases at once, refused files say why, the client is told, and the words on the way."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from portal.audit import AuditEvent
from portal.cases.models import CaseStatus, ItemStatus
from portal.cases.operations import change_status, open_case, review_item, set_value
from portal.db import db
from portal.documents import links
from portal.documents.models import RefusalReason, Review, Source
from portal.documents.operations import add_document, review_document
from tests import factories
from tests.corpus import path

TODAY = date(2026, 11, 27)


@pytest.fixture
def client_(org):
    return factories.MicroClientFactory(org=org, email="ines.martinez@exemple.fr")


@pytest.fixture
def case(client_, agent):
    return open_case(client_, "urssaf-ca", agent.ref, today=TODAY)


def _item(case, code):
    return next(i for i in case.items if i.code == code)


def _add(case, code, name, actor="user:0"):
    with path(name).open("rb") as handle:
        return add_document(
            case, _item(case, code), handle, name, actor, source=Source.staff, max_bytes=10**7
        )


# --- 1. cases move by themselves ---------------------------------------------------------------


def test_case_moves_by_itself_and_staff_can_still_set_a_state_by_hand(case, client_, agent):
    assert case.status == CaseStatus.open  # no link yet: staff's turn
    link, _token = links.create_link(client_, agent.ref)
    assert case.status == CaseStatus.waiting_client
    value = _item(case, "ca_bnc")
    set_value(case, value, "2350", link.ref, expected_version=None, by_staff=False)
    assert case.status == CaseStatus.open  # a value to check: staff's turn
    review_item(case, value, ItemStatus.accepted, agent.ref, expected_version=None)
    assert case.status == CaseStatus.ready
    # An optional paper refused does not hold the case back.
    document = _add(case, "releves_bancaires", "scan_3_pages.pdf", link.ref)
    review_document(document, Review.refused, agent.ref, reason=RefusalReason.illegible)
    assert case.status == CaseStatus.ready
    # By hand, any legal state; the next change of an input settles the case again.
    change_status(case, CaseStatus.open, agent.ref, expected_version=None)
    assert case.status == CaseStatus.open
    review_item(case, value, ItemStatus.rejected, agent.ref, expected_version=None, reason="2 350 ?")
    assert case.status == CaseStatus.waiting_client
    links.revoke_link(link, agent.ref)
    assert case.status == CaseStatus.open
    moves = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "case.status", AuditEvent.target == case.ref)
    ).all()
    assert [(e.data["new"], e.data.get("auto")) for e in moves][-2:] == [
        ("waiting_client", True),
        ("open", True),
    ]
