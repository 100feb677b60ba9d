"""Business rules of the register, free of HTTP: reads, transactional writes, domain errors."""

# Every write refreshes the search index before it commits: importing the index registers that hook.
from ..search import index as _search_index  # noqa: F401

# ... and derives the studies it changed from all their sources first (domain/derive.py).
from . import derive as _derive  # noqa: F401,E402
