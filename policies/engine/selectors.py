"""Label selectors: parsing from manifest dicts, label syntax checks, and a memoising matcher.

Evaluation asks "does selector S match labels L" millions of times with few distinct S and L, so
``SelectorCache`` interns each distinct selector to a small int and memoises on (int, frozenset).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from policies.engine.model import OPERATORS, LabelSelector, Requirement

# ``fail(path, message)`` raises the caller's error type with the caller's context (policy or case).
Fail = Callable[[str, str], NoReturn]

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def label_key_problem(key: object) -> str | None:
    """Why ``key`` is not a valid label key (``[prefix/]name``), or None when it is."""
    if not isinstance(key, str) or not key:
        return f"label key must be a non-empty string, got {key!r}"
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"invalid label key prefix: {key!r}"
    if len(name) > 63 or not _NAME.match(name):
        return f"invalid label key: {key!r}"
    return None


def label_value_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"label value must be a string, got {value!r}"
    if value and (len(value) > 63 or not _NAME.match(value)):
        return f"invalid label value: {value!r}"
    return None


def parse_labels(data: Any, path: str, fail: Fail) -> dict[str, str]:
    """A ``{key: value}`` label map, checked the way the API server checks it."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        fail(path, f"expected a mapping of labels, got {type(data).__name__}")
    out: dict[str, str] = {}
    for key, value in data.items():
        problem = label_key_problem(key) or label_value_problem(value)
        if problem:
            fail(f"{path}.{key}" if isinstance(key, str) else path, problem)
        out[key] = value
    return out


def parse_selector(data: Any, path: str, fail: Fail) -> LabelSelector:
    """A ``LabelSelector`` dict (``matchLabels`` / ``matchExpressions``); ``{}`` selects everything."""
    if data is None:
        return LabelSelector()
    if not isinstance(data, Mapping):
        fail(path, f"expected a label selector mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - {"matchLabels", "matchExpressions"})
    if unknown:
        fail(f"{path}.{unknown[0]}", "unknown field")
    labels = parse_labels(data.get("matchLabels"), f"{path}.matchLabels", fail)
    expressions_data = data.get("matchExpressions") or []
    if not isinstance(expressions_data, list):
        fail(f"{path}.matchExpressions", "expected a list")
    requirements = [
        _parse_requirement(item, f"{path}.matchExpressions[{i}]", fail) for i, item in enumerate(expressions_data)
    ]
    return LabelSelector(
        match_labels=tuple(sorted(labels.items())),
        # Sorted so that two selectors written in a different order intern to one cache entry.
        match_expressions=tuple(sorted(set(requirements), key=lambda r: (r.key, r.operator, r.values))),
    )


def _parse_requirement(data: Any, path: str, fail: Fail) -> Requirement:
    if not isinstance(data, Mapping):
        fail(path, "expected a mapping with key, operator and values")
    unknown = sorted(set(data) - {"key", "operator", "values"})
    if unknown:
        fail(f"{path}.{unknown[0]}", "unknown field")
    key = data.get("key")
    problem = label_key_problem(key)
    if problem:
        fail(f"{path}.key", problem)
    operator = data.get("operator")
    if operator not in OPERATORS:
        fail(f"{path}.operator", f"must be one of {', '.join(OPERATORS)}, got {operator!r}")
    values = data.get("values") or []
    if not isinstance(values, list):
        fail(f"{path}.values", "expected a list")
    for i, value in enumerate(values):
        problem = label_value_problem(value)
        if problem:
            fail(f"{path}.values[{i}]", problem)
    # The API server rejects these combinations, and an empty In would otherwise silently match nothing.
    if operator in ("In", "NotIn") and not values:
        fail(f"{path}.values", f"must be non-empty for operator {operator}")
    if operator in ("Exists", "DoesNotExist") and values:
        fail(f"{path}.values", f"must be empty for operator {operator}")
    return Requirement(key=key, operator=operator, values=tuple(sorted(set(values))))


class SelectorCache:
    """Interns selectors and memoises their matches against label sets."""

    def __init__(self) -> None:
        self._ids: dict[LabelSelector, int] = {}
        self._selectors: list[LabelSelector] = []
        self._matches: dict[tuple[int, frozenset[tuple[str, str]]], bool] = {}

    def intern(self, selector: LabelSelector) -> int:
        sid = self._ids.get(selector)
        if sid is None:
            sid = len(self._selectors)
            self._ids[selector] = sid
            self._selectors.append(selector)
        return sid

    def matches(self, sid: int, label_set: frozenset[tuple[str, str]]) -> bool:
        key = (sid, label_set)
        hit = self._matches.get(key)
        if hit is None:
            hit = self._selectors[sid].matches(dict(label_set))
            self._matches[key] = hit
        return hit

    def __len__(self) -> int:
        return len(self._selectors)
