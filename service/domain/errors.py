"""Errors the domain raises; the HTTP layer maps each to a status (api/problems.py)."""

from __future__ import annotations


class DomainError(Exception):
    status = 400

    def __init__(self, detail: str, *, errors: dict[str, list[str]] | None = None, **extra):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class PreconditionFailed(DomainError):
    status = 412


class InvalidInput(DomainError):
    """Input that passed the schema but breaks a rule needing the database (e.g. an unknown study id)."""

    status = 422


class Moved(DomainError):
    """A record merged into another: its id answers with a permanent redirect to the survivor's
    (``resource`` is the collection, e.g. ``studies``; the HTTP layer sends the Location)."""

    status = 308

    def __init__(self, detail: str, *, resource: str, old_id: int, new_id: int, **extra):
        super().__init__(detail, merged_into=new_id, **extra)
        self.resource, self.old_id, self.new_id = resource, old_id, new_id
