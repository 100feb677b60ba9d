"""Every URL the API hands out (`next`, `prev`, `Link`, `Location`, a saved search's `results`).

Absolute on the configured PUBLIC_URL, else relative (a path from the host's root, with the prefix a
trusted proxy gave in X-Forwarded-Prefix): never built from the client's `Host` header, which a
shared cache does not key on (a poisoned `next` would be served to everyone).
"""

from __future__ import annotations

from flask import current_app, request, url_for


def link(path: str) -> str:
    """``path`` (from the app's root, as ``request.path`` gives it, query string allowed) as a link."""
    return (current_app.config.get("PUBLIC_URL") or request.script_root) + path


def link_for(endpoint: str, **values) -> str:
    """``url_for(endpoint, **values)`` as a link."""
    path = url_for(endpoint, **values)
    root = request.script_root
    return link(path[len(root):] if root and path.startswith(root) else path)
