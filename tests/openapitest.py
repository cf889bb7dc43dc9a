"""Check HTTP answers against glint's OpenAPI document (tests only: jsonschema, Draft 2020-12 as OpenAPI 3.1)."""

from __future__ import annotations

import re

from jsonschema import Draft202012Validator


def _template_re(template: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "(.+)", re.escape(template)) + "$")


def operation_of(doc: dict, method: str, path: str) -> tuple[str, dict]:
    """(path template, operation) the document gives for a concrete request path; AssertionError if none."""
    path = path.split("?", 1)[0]
    hits = [(t, ops) for t, ops in doc["paths"].items() if _template_re(t).match(path)]
    hits.sort(key=lambda h: -len(re.sub(r"\{[^}]+\}", "", h[0])))  # literal segments win over templates
    for template, ops in hits:
        if method.lower() in ops:
            return template, ops[method.lower()]
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


def check_response(doc: dict, method: str, path: str, status: int, content_type: str, body) -> str:
    """Validate one answer against the document (status listed or default, media type, schema); return the template."""
    template, op = operation_of(doc, method, path)
    resp = op["responses"].get(str(status)) or op["responses"].get("default")
    assert resp is not None, f"{method} {template}: status {status} is not documented"
    media = content_type.split(";")[0].strip()
    assert media in resp["content"], f"{method} {template} {status}: {media} is not documented"
    schema = dict(resp["content"][media]["schema"], components=doc["components"])
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{method} {template} {status}: {errors[0].message} at {list(errors[0].path)}"
    return template


def check_error(doc: dict, body) -> None:
    """An answer outside the document (404 for no route, 405) must still be the documented JSON error."""
    schema = {"$ref": "#/components/schemas/Error", "components": doc["components"]}
    errors = list(Draft202012Validator(schema).iter_errors(body))
    assert not errors, errors[0].message
