"""What the OpenAPI schema says of every operation alike (a drf-spectacular postprocessing hook)."""

from __future__ import annotations

from typing import Any

PROBLEM = {"application/json": {"schema": {"$ref": "#/components/schemas/ProblemOut"}}}
COMMON = {
    "401": {"description": "no session and no valid token: send `Authorization: Bearer <token>`",
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}, "content": PROBLEM},
    "429": {"description": "too many requests: try again after Retry-After seconds",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}}, "content": PROBLEM},
}


def add_common_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Every operation may answer 401 (not signed in) and 429 (throttled), with a ProblemOut."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                for status, response in COMMON.items():
                    operation["responses"].setdefault(status, response)
    return result
