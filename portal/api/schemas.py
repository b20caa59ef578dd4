"""What the API returns and accepts, as marshmallow schemas: they serialise the responses and
apispec's marshmallow plugin turns them into the OpenAPI components."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class ErrorBody(Schema):
    code = fields.String(required=True, metadata={"description": "stable code: not_found..."})
    status = fields.Integer(required=True)
    message = fields.String(required=True, metadata={"description": "French or English"})
    title = fields.String()


class Error(Schema):
    error = fields.Nested(ErrorBody, required=True)


class ClientOut(Schema):
    id = fields.Integer()
    reference = fields.String()
    first_name = fields.String()
    last_name = fields.String()
    kind = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    postcode = fields.String(allow_none=True)
    activity = fields.String(allow_none=True)
    periodicity = fields.String(allow_none=True)
    archived_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class ItemOut(Schema):
    id = fields.Integer()
    code = fields.String()
    kind = fields.String(metadata={"description": "document or value"})
    label = fields.String()
    required = fields.Boolean()
    status = fields.String()
    value = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)


class CaseOut(Schema):
    id = fields.Integer()
    client_id = fields.Integer()
    procedure_code = fields.String()
    period_label = fields.String()
    period_start_on = fields.Date()
    period_end_on = fields.Date()
    due_on = fields.Date(allow_none=True)
    status = fields.String()
    filed_at = fields.DateTime(allow_none=True)
    filing_reference = fields.String(allow_none=True)
    updated_at = fields.DateTime()
    version = fields.Integer()


class CaseDetailOut(CaseOut):
    items = fields.List(fields.Nested(ItemOut))


class DocumentOut(Schema):
    id = fields.Integer()
    case_id = fields.Integer()
    item_id = fields.Integer()
    filename = fields.String()
    kind = fields.String()
    mime = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    pages = fields.Integer(allow_none=True)
    source = fields.String()
    uploaded_at = fields.DateTime()
    review = fields.String()
    normalisation = fields.String()


class PackOut(Schema):
    id = fields.Integer()
    case_id = fields.Integer()
    version = fields.Integer()
    status = fields.String()
    requested_at = fields.DateTime()
    built_at = fields.DateTime(allow_none=True)
    pages = fields.Integer(allow_none=True)
    size = fields.Integer(allow_none=True)
    missing = fields.List(fields.String())
    shared_at = fields.DateTime(allow_none=True)


class LinkOut(Schema):
    id = fields.Integer()
    client_id = fields.Integer()
    case_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    expires_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(allow_none=True)
    uses = fields.Integer()


class NewLinkOut(LinkOut):
    url = fields.String(metadata={"description": "the link to give the client; shown once"})


class ValueIn(Schema):
    value = fields.String(required=True, validate=validate.Length(max=200))
    version = fields.Integer(metadata={"description": "the case version read (optimistic lock)"})


class PackIn(Schema):
    force = fields.Boolean(load_default=False)


class LinkIn(Schema):
    case_id = fields.Integer(allow_none=True)
    days = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=90))


def page_of(item: type[Schema]) -> type[Schema]:
    """The schema of a page of `item` rows with its cursor."""
    name = item.__name__.removesuffix("Out") + "Page"
    return Schema.from_dict(
        {
            "data": fields.List(fields.Nested(item)),
            "next_cursor": fields.String(
                allow_none=True, metadata={"description": "pass as ?cursor= for the next page"}
            ),
        },
        name=name,
    )


ClientPage = page_of(ClientOut)
CasePage = page_of(CaseOut)
DocumentPage = page_of(DocumentOut)
PackPage = page_of(PackOut)
LinkPage = page_of(LinkOut)
