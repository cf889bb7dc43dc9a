"""A few seconds of schemathesis in the default run: every operation of the served OpenAPI document, inputs
generated from it (positive and negative), through the app in-process (WSGI), with a brand key and without
a key: no 500, every answer as documented, schema-breaking input refused. The long run against a real
`glint serve` with every role is tools/fuzz_api.py (pytest -m bench tests/e2e/test_fuzz_api.py)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks as st_checks

from glint.server.app import create_app
from glint.server.auth import KeyStore

EXAMPLES = 3  # per operation and caller; derandomized, so the same inputs every run
CHECKS = [st_checks.not_a_server_error, st_checks.status_code_conformance, st_checks.content_type_conformance,
          st_checks.response_headers_conformance, st_checks.response_schema_conformance,
          st_checks.negative_data_rejection]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("hq")
    ks = KeyStore(home / "glint.db")
    token = ks.create("brand", "fuzz", rate_per_s=1e6)[1]
    ks.close()
    (home / "config.toml").write_text("[limits]\npublic_rate_per_s = 1000000\npublic_burst = 1000000\n"
                                      "verify_rate_per_s = 1000000\nverify_burst = 1000000\n")
    app = create_app(home)
    yield app, token
    app.glint_close()


def test_every_operation_answers_as_documented(served):
    app, token = served
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", app)
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 9
    ran = []

    def fuzz(op, headers):
        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])
        def run(case):
            ran.append(op.label)
            case.call_and_validate(headers=headers, checks=CHECKS)

        run()

    for op in ops:
        for headers in ({"Authorization": f"Bearer {token}"}, {}):
            fuzz(op, headers)
    assert set(ran) == {op.label for op in ops}
