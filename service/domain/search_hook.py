"""The one call an import makes, at the end of its transaction, for the records it created or changed."""

from __future__ import annotations

from collections.abc import Iterable

from ..db import changed


def refresh(study_ids: Iterable[int], reference_ids: Iterable[int]) -> None:
    """Mark these records for the search index, which rewrites their documents before the import's
    transaction commits (and the documents of the studies linked to these references)."""
    changed(studies=study_ids, references=reference_ids)
