"""An official form's newer version, uploaded by an organisation's admin.

Every upload is kept (like pack versions): the newest row of a form wins, older ones stay as
the record of what was used when. Organisation data, not a client's: no personal data in it,
so client export and erasure do not concern it; storage-check knows its key column.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, utcnow
from portal.tenancy import TenantMixin


class OfficialForm(TenantMixin, Base):
    __tablename__ = "official_forms"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        Index("ix_official_forms_org_id_form_code", "org_id", "form_code", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    form_code: Mapped[str] = mapped_column(String(60))  # the form file's code, cerfa-12100-03
    storage_key: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    pages: Mapped[int] = mapped_column()
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
