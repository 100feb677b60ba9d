"""What the list endpoints share beyond paging: choosing the sort when `q` may rank the answer."""

from __future__ import annotations

from collections.abc import Mapping

from ..domain.errors import InvalidInput
from ..domain.ordering import RELEVANCE


def resolve_sort(args: Mapping, default: str = "id") -> str:
    """The sort asked for, else `relevance` with `q`, else ``default``; `relevance` needs `q`."""
    sort, q = args.get("sort"), args.get("q")
    if sort == RELEVANCE and q is None:
        raise InvalidInput("Invalid query parameter — sort: `relevance` ranks the matches of `q`; "
                           "give `q` or another sort.",
                           errors={"sort": ["`relevance` needs `q`."]})
    return sort or (RELEVANCE if q is not None else default)
