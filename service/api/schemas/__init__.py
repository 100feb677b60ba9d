"""marshmallow schemas: what each endpoint accepts and answers (the OpenAPI document is built from them)."""
