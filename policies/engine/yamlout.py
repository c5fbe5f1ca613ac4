"""Multi-document YAML for policies: stable key order, safe types only.

PyYAML's C emitter (libyaml) writes the same bytes as its Python emitter, several times faster; the
Python one is used where libyaml is not installed. A test checks that both give identical text.
Sequences are not indented under their key, as ``kubectl get -o yaml`` prints them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

DUMPER: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def to_yaml(policies: Iterable[Mapping[str, Any]], *, dumper: type | None = None) -> str:
    """One YAML document per policy, in the given order, keys in the order the dicts hold them.

    Generated dicts are built in a canonical order (apiVersion, kind, metadata, spec; sorted labels and
    peers), so the same input always gives byte-identical text.
    """
    documents = [_plain(p) for p in policies]
    if not documents:
        return ""
    return yaml.dump_all(
        documents,
        Dumper=dumper or DUMPER,
        sort_keys=False,
        default_flow_style=False,
        explicit_start=True,
        allow_unicode=True,
        width=4096,
    )


def _plain(value: Any) -> Any:
    """Mappings (including read-only proxies) as dicts and tuples as lists, so a safe dumper accepts them."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
