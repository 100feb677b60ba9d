"""Full-text search: the `q` grammar (query.py) and the indexes kept in step with the records (index.py)."""
