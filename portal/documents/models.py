"""Documents (the files a checklist item asks for) and the upload links clients use to send them."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKeyConstraint,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.cases.models import Case, ChecklistItem
from portal.clients.models import Client
from portal.db import Base, UTCDateTime, str_enum, utcnow
from portal.tenancy import TenantMixin


class Source(enum.StrEnum):
    staff = "staff"
    link = "link"


class Review(enum.StrEnum):
    pending = "pending"
    accepted = "accepted"
    refused = "refused"


class Normalisation(enum.StrEnum):
    pending = "pending"
    ready = "ready"
    failed = "failed"


class RefusalReason(enum.StrEnum):
    illegible = "illegible"
    incomplete = "incomplete"
    expired = "expired"
    wrong_document = "wrong_document"
    other = "other"


class Document(TenantMixin, Base):
    """One stored file. The bytes live in object storage only; this row is the index to them."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        UniqueConstraint("storage_key"),
        # The same bytes twice on one line are one document: enforced here, not by hope (the same
        # paper sent for two lines is attached to each).
        UniqueConstraint("item_id", "sha256"),
        ForeignKeyConstraint(
            ["org_id", "case_id"], ["cases.org_id", "cases.id"], ondelete="CASCADE"
        ),
        # No ON DELETE: a line with documents is evidence and is never removed on its own.
        ForeignKeyConstraint(
            ["org_id", "item_id"], ["checklist_items.org_id", "checklist_items.id"]
        ),
        Index("ix_documents_item_id", "item_id"),
        # The "to review" counts read pending documents per organisation.
        Index("ix_documents_org_id_review", "org_id", "review"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(index=True)
    item_id: Mapped[int] = mapped_column()
    storage_key: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(10))  # pdf, jpeg, png, webp, heic (sniffed)
    mime: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    pages: Mapped[int | None] = mapped_column(SmallInteger)
    source: Mapped[Source] = mapped_column(str_enum(Source, "document_source"))
    uploaded_by: Mapped[str] = mapped_column(String(64))  # "user:3" or "link:12"
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The PDF version that goes into packs, and the page-1 thumbnail for the review screen.
    normalisation: Mapped[Normalisation] = mapped_column(
        str_enum(Normalisation, "document_normalisation"), default=Normalisation.pending
    )
    normalised_key: Mapped[str | None] = mapped_column(String(200))
    thumbnail_key: Mapped[str | None] = mapped_column(String(200))
    normalise_error: Mapped[str | None] = mapped_column(Text)
    review: Mapped[Review] = mapped_column(
        str_enum(Review, "document_review"), default=Review.pending
    )
    refusal_reason: Mapped[RefusalReason | None] = mapped_column(
        str_enum(RefusalReason, "document_refusal_reason")
    )
    refusal_note: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    case: Mapped[Case] = relationship(
        primaryjoin="and_(Document.case_id == Case.id, Document.org_id == Case.org_id)",
        foreign_keys=[case_id],
        viewonly=True,
    )
    item: Mapped[ChecklistItem] = relationship(
        primaryjoin=(
            "and_(Document.item_id == ChecklistItem.id, Document.org_id == ChecklistItem.org_id)"
        ),
        foreign_keys=[item_id],
        viewonly=True,
    )

    checks: Mapped[list[DocumentCheck]] = relationship(
        primaryjoin=(
            "and_(DocumentCheck.document_id == Document.id, "
            "DocumentCheck.org_id == Document.org_id)"
        ),
        foreign_keys="[DocumentCheck.document_id]",
        order_by="DocumentCheck.id",
        viewonly=True,
    )

    @property
    def ref(self) -> str:
        return f"document:{self.id}"

    @property
    def open_checks(self) -> list[DocumentCheck]:
        """The checks staff have not dismissed, in the order the readers gave them."""
        return [c for c in self.checks if c.dismissed_at is None]

    @property
    def is_image(self) -> bool:
        return self.kind != "pdf"

    @property
    def derived_keys(self) -> tuple[str, str]:
        """Where the normalisation job writes the PDF version and the thumbnail."""
        return f"{self.storage_key}.pdf", f"{self.storage_key}.thumb.jpg"


class DocumentCheck(TenantMixin, Base):
    """One automatic check of a document (portal/paperchecks), with the words it was read from.

    Written by the worker after normalisation; staff see the open ones on review and may
    dismiss one: a dismissed check (same code and evidence) is never written again for that
    document. Personal data (names, IBAN, amounts read): exported and erased with the document.
    """

    __tablename__ = "document_checks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["org_id", "document_id"], ["documents.org_id", "documents.id"], ondelete="CASCADE"
        ),
        Index("ix_document_checks_document_id", "document_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column()
    code: Mapped[str] = mapped_column(String(40))  # Finding.code: iban_invalid, kind_mismatch...
    ok: Mapped[bool] = mapped_column(Boolean)
    message: Mapped[str] = mapped_column(Text)  # French, for staff
    evidence: Mapped[str] = mapped_column(Text, default="")  # the words read
    value: Mapped[str | None] = mapped_column(String(200))  # proposed, "à vérifier"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dismissed_by: Mapped[str | None] = mapped_column(String(64))


class UploadLink(TenantMixin, Base):
    """A secret address a client uses to send documents, without an account.

    Only the SHA-256 of the token is kept: the token itself is shown once, at creation.
    """

    __tablename__ = "upload_links"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        UniqueConstraint("token_hash"),
        ForeignKeyConstraint(
            ["org_id", "client_id"], ["clients.org_id", "clients.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["org_id", "case_id"], ["cases.org_id", "cases.id"], ondelete="CASCADE"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(index=True)
    # Null: every open case of the client; else this case only.
    case_id: Mapped[int | None] = mapped_column(index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    uses: Mapped[int] = mapped_column(default=0)
    # Optional check: the client types his birth date before seeing anything.
    verify_birth_date: Mapped[bool] = mapped_column(default=False)
    failed_attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Locks since the last right date: each one longer, then the link is suspended until
    # staff reopen it (portal.documents.links.check_birth_date).
    lock_count: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    client: Mapped[Client] = relationship(
        primaryjoin="and_(UploadLink.client_id == Client.id, UploadLink.org_id == Client.org_id)",
        foreign_keys=[client_id],
        viewonly=True,
        lazy="joined",
    )
    case: Mapped[Case | None] = relationship(
        primaryjoin="and_(UploadLink.case_id == Case.id, UploadLink.org_id == Case.org_id)",
        foreign_keys=[case_id],
        viewonly=True,
    )

    @property
    def ref(self) -> str:
        return f"link:{self.id}"

    def state(self, now: datetime) -> str:
        """active, expired or revoked: what the public page and the staff list show."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"
