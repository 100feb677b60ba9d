"""The one call an import makes, at the end of its transaction, for the records it created or changed."""

from __future__ import annotations


def refresh(study_ids, reference_ids):
    """Refresh derived search data; wired by the search index."""
    return None
