"""X-Forwarded-* honoured only from the peers in TRUSTED_PROXIES (werkzeug's ProxyFix, one hop).

From a trusted peer (the nginx in front, a load balancer) X-Forwarded-For becomes the client address,
-Proto/-Host/-Port the scheme and host, -Prefix the path the app is mounted under (the prefix of its
relative links). From any other peer these headers, and `Forwarded`, are removed before the app sees
them, so no code (links, logs, rate limits) can be misled by what a client claims.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from werkzeug.middleware.proxy_fix import ProxyFix

FORWARDED_HEADERS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO",
                     "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX")


class TrustedProxies:
    """WSGI middleware: ProxyFix for requests from ``networks``, the forwarded headers dropped else."""

    def __init__(self, app, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]):
        self.app = app
        self.networks = tuple(networks)
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)

    def trusts(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address((address or "").split("%", 1)[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def __call__(self, environ, start_response):
        if self.networks and self.trusts(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        for name in FORWARDED_HEADERS:
            environ.pop(name, None)
        return self.app(environ, start_response)
