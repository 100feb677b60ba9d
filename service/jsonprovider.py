"""Flask's JSON provider on orjson: the same JSON values as Flask's default provider, made faster.

``dumps`` gives what ``DefaultJSONProvider.dumps`` gives for everything the service answers, as values:
dates and datetimes as Flask writes them (RFC 822, ``http_date``: orjson's own ISO form is passed
through to Flask's ``default``), Decimal and UUID as strings, dataclasses as dicts, non-str dict keys
as JSON's strings, and key order as given (``sort_keys`` is honoured: the app turns it off). The bytes
differ: compact and UTF-8 (no ``\\uXXXX`` for non-ASCII, no spaces after `,` and `:`).

Anything orjson refuses (an integer beyond 64 bits, a lone surrogate in a str, a type neither knows) or
a call with arguments it has no option for (``indent`` other than 2, ``separators``, ``ensure_ascii``...:
flask-smorest's ``openapi write`` and the spec endpoint's ``indent=2`` among them) is handed to the
default provider unchanged, so its output, and its errors, stay what they were. ``loads`` is the
default provider's (Python's ``json``): request bodies parse, and fail, exactly as before.
"""

from __future__ import annotations

import typing as t

import orjson
from flask.json.provider import DefaultJSONProvider

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS


class OrjsonProvider(DefaultJSONProvider):
    def _orjson(self, obj: t.Any, indent: bool = False) -> bytes | None:
        """orjson's bytes for ``obj``, or None where only the default provider can say it."""
        option = _OPTIONS | (orjson.OPT_SORT_KEYS if self.sort_keys else 0) | (
            orjson.OPT_INDENT_2 if indent else 0)
        try:
            return orjson.dumps(obj, default=self.default, option=option)
        except orjson.JSONEncodeError:
            return None

    def dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
        if kwargs:
            return super().dumps(obj, **kwargs)
        data = self._orjson(obj)
        return super().dumps(obj) if data is None else data.decode()

    def response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        obj = self._prepare_response_obj(args, kwargs)
        indent = (self.compact is None and self._app.debug) or self.compact is False
        data = self._orjson(obj, indent=indent)
        if data is None:
            return super().response(obj)
        return self._app.response_class(data + b"\n", mimetype=self.mimetype)
