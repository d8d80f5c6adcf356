"""The web API fuzzed from its own OpenAPI document (schemathesis, in-process over ASGI): valid
and invalid requests alike must never get a 500, and every answer must match the document
(status codes, content types, response schemas).  Bounded: a few dozen examples per
operation, with the tiny bundle, well under a minute on a busy 2-core machine.
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the 'serve' extra (starlette, uvicorn) is not installed")
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis (the 'test' extra) is not installed")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (content_type_conformance, negative_data_rejection,  # noqa: E402
                                 not_a_server_error, response_schema_conformance, status_code_conformance)

from edge_finer.service import Service  # noqa: E402
from edge_finer.web.app import create_app  # noqa: E402

#: Small caps, so that the fuzzer also reaches the 413 answers.
APP = create_app(Service(max_text_bytes=2000), max_request_bytes=20_000, workers=1, queue=4)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
SCHEMA.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
# invalid requests must be refused with a 4xx; 413 (over a size cap, e.g. too many texts) is one
_REJECT = SCHEMA.config.checks.negative_data_rejection
SCHEMA.config.checks.negative_data_rejection = type(_REJECT)(expected_statuses=[*_REJECT.expected_statuses, 413])
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


@SCHEMA.parametrize()
@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_api_never_answers_500_and_matches_its_document(case, bundles_env: Path):
    case.call_and_validate(checks=CHECKS)
