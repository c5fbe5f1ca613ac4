"""Multi-document YAML for policies: stable key order, safe types only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """SafeDumper that indents list items under their key, as kubectl prints them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def to_yaml(policies: Iterable[Mapping[str, Any]]) -> str:
    """One YAML document per policy, in the given order, keys in the order the dicts hold them.

    Generated dicts are built in a canonical order (apiVersion, kind, metadata, spec; sorted labels and
    peers), so the same input always gives byte-identical text.
    """
    documents = [_plain(p) for p in policies]
    if not documents:
        return ""
    return yaml.dump_all(
        documents,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        explicit_start=True,
        allow_unicode=True,
        width=4096,
    )


def _plain(value: Any) -> Any:
    """Mappings (including read-only proxies) as dicts and tuples as lists, so SafeDumper accepts them."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
