"""Label selectors: parsing from manifest dicts, label syntax checks, and an index of selectors.

Evaluation asks "which of these selectors match labels L" once per pod or namespace; ``SelectorIndex``
answers it by looking up the labels L carries instead of testing every selector.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, NoReturn, TypeVar

from policies.engine.model import OPERATORS, LabelSelector, Requirement

T = TypeVar("T")

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


class SelectorIndex(Generic[T]):
    """The items whose selector matches a label map, without testing every selector.

    Each selector is filed under one label it requires: a ``matchLabels`` pair, else every value of an
    ``In`` requirement, else the key of an ``Exists`` one; a selector that requires no label (empty, or
    only ``NotIn``/``DoesNotExist``) is tested always. A query looks up the labels the pod carries, so it
    tests only the selectors that can match; results keep the order the items were given in.
    """

    def __init__(self, entries: Iterable[tuple[T, LabelSelector]]) -> None:
        self._entries: list[tuple[T, LabelSelector]] = []
        self._always: list[int] = []
        self._by_pair: dict[tuple[str, str], list[int]] = {}
        self._by_key: dict[str, list[int]] = {}
        for position, (item, selector) in enumerate(entries):
            self._entries.append((item, selector))
            if selector.match_labels:
                self._by_pair.setdefault(selector.match_labels[0], []).append(position)
                continue
            required = next((r for r in selector.match_expressions if r.operator == "In"), None)
            if required is not None:
                for value in required.values:
                    self._by_pair.setdefault((required.key, value), []).append(position)
                continue
            exists = next((r for r in selector.match_expressions if r.operator == "Exists"), None)
            if exists is not None:
                self._by_key.setdefault(exists.key, []).append(position)
                continue
            self._always.append(position)

    def __len__(self) -> int:
        return len(self._entries)

    def matching(self, labels: Mapping[str, str]) -> list[T]:
        """The items whose selector matches ``labels``, in the order they were given."""
        candidates = set(self._always)
        by_pair, by_key = self._by_pair, self._by_key
        for pair in labels.items():
            hit = by_pair.get(pair)
            if hit:
                candidates.update(hit)
            hit = by_key.get(pair[0])
            if hit:
                candidates.update(hit)
        entries = self._entries
        return [entries[i][0] for i in sorted(candidates) if entries[i][1].matches(labels)]
