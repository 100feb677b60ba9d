"""The baseline: a bare WSGI app answering a small JSON body, served by the same gunicorn settings."""

BODY = b'{"status": "ok", "hello": "world"}'


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]
