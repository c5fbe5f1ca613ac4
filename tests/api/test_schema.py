"""The API keeps its OpenAPI schema: schemathesis sends every operation of ``/api/schema/`` generated
requests (a bounded number each) over HTTP to the live server, as an admin, and checks that nothing answers
with a 5xx and that every answer (status, headers, body) is one the schema documents.

Path parameters name the world's real workload (shop/api), so that the answers carry real rows, verdicts
and YAML; the 404s of other names are the permission matrix's and test_api's business. Throttling is off
here (its 429 has tests of its own), so that the run measures the schema, not the rate limit.
"""

from __future__ import annotations

import os
from typing import Any

import hypothesis
import pytest
import schemathesis
import yaml
from hypothesis import settings
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.config import HealthCheck
from schemathesis.core.media_types import YAML_MEDIA_TYPES
from schemathesis.specs.openapi.checks import positive_data_acceptance

from policies import services
from policies.models import ApiToken
from tests.test_permission_matrix import build_world

FAR_ID = 987_654_321
# Per operation, on top of the schema's own examples; the same ones on every run. For a deeper search, e.g.
# NETSEC_SCHEMA_EXAMPLES=200 NETSEC_SCHEMA_SEARCH=1 (new examples each run).
EXAMPLES = int(os.environ.get("NETSEC_SCHEMA_EXAMPLES", "25"))
DETERMINISTIC = os.environ.get("NETSEC_SCHEMA_SEARCH") != "1"

pytestmark = [pytest.mark.django_db(transaction=True)]


def _schema(*, real_paths: bool) -> Any:
    """The schema /api/schema/ serves (made here, at collection, so that each operation is a test of its own).
    ``real_paths``: path parameters name the world's shop/api; otherwise they are generated too."""
    from drf_spectacular.generators import SchemaGenerator

    loaded = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    real = {"path.cluster": "test", "path.namespace": "shop", "path.kind": "Deployment", "path.name": "api"}
    loaded.config.update(parameters=real if real_paths else {},
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    loaded.config.generation.update(max_examples=EXAMPLES if real_paths else EXAMPLES // 3, database="none",
                                    deterministic=DETERMINISTIC)
    loaded.config.phases.update(phases=["examples", "fuzzing"])
    return loaded


@pytest.fixture
def admin_token(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The world, and the Authorization header of an admin's token. The token's id is moved out of the way
    of the generated ``DELETE /tokens/{id}/`` calls, which would revoke it halfway otherwise."""
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": None, "user": None, "ingest": None})
    world = build_world()
    made = services.create_token(world.users["admin"], "schemathesis")
    ApiToken.objects.filter(pk=made.token.pk).update(id=FAR_ID)
    return {"Authorization": f"Bearer {made.secret}"}


@schemathesis.deserializer(*YAML_MEDIA_TYPES)
def _yaml_file(ctx: Any, response: Any) -> str:
    """A YAML download is documented as the file's text: check that it is YAML (every document of it), then
    compare the text with the schema's string."""
    text = response.content.decode("utf-8")
    list(yaml.safe_load_all(text))
    return text


schema = _schema(real_paths=True)
any_path = _schema(real_paths=False)


def _call(case: Any, live_server: Any, admin_token: dict[str, str]) -> None:
    # A request the schema allows may still be refused with a documented 400: a CIDR, label or port is checked
    # beyond what a JSON schema can say ("10.0.0.0/99"). What must hold is the rest: no 5xx, and every answer
    # (status, content type, headers, body) as documented.
    case.call_and_validate(base_url=live_server.url, headers=admin_token,
                           excluded_checks=[positive_data_acceptance])


@schema.parametrize()
@settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])  # one world per operation
def test_the_api_answers_as_its_schema_says(case: Any, live_server: Any, admin_token: dict[str, str]) -> None:
    _call(case, live_server, admin_token)


@any_path.parametrize()
@settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
def test_any_path_is_answered_as_the_schema_says(case: Any, live_server: Any, admin_token: dict[str, str]) -> None:
    _call(case, live_server, admin_token)


def test_the_schema_tested_is_the_one_served(live_server: Any, admin_token: dict[str, str]) -> None:
    import requests
    from drf_spectacular.generators import SchemaGenerator

    served = requests.get(f"{live_server.url}/api/schema/", headers={**admin_token, "Accept": "application/json"},
                          timeout=30)
    assert served.status_code == 200
    assert served.json() == SchemaGenerator().get_schema(request=None, public=True)
