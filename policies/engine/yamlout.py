"""Multi-document YAML for policies: stable key order, safe types only.

Policies are mappings, lists, strings, integers, booleans and nulls, written in block style: ``to_yaml``
writes those itself, the same bytes as PyYAML's dumper would (a test compares them over generated policies
and awkward strings), several times faster than PyYAML's representer. How a string is written (plain or
quoted) is PyYAML's own decision, asked once per distinct string that is not plainly a name; a document
with anything else (a float, a string over a line) goes to PyYAML whole. PyYAML's C emitter (libyaml)
writes the same bytes as its Python emitter; the Python one is used where libyaml is not installed.
Sequences are not indented under their key, as ``kubectl get -o yaml`` prints them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

DUMPER: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def to_yaml(policies: Iterable[Mapping[str, Any]], *, dumper: type | None = None) -> str:
    """One YAML document per policy, in the given order, keys in the order the dicts hold them.

    Generated dicts are built in a canonical order (apiVersion, kind, metadata, spec; sorted labels and
    peers), so the same input always gives byte-identical text. ``dumper``: PyYAML's, for every document.
    """
    documents = [_plain(p) for p in policies]
    if dumper is not None:
        return _pyyaml(documents, dumper)
    out: list[str] = []
    for document in documents:
        try:
            lines: list[str] = []
            if not isinstance(document, dict) or not document:
                raise _NotPlain
            _mapping(document, 0, lines, "")
            out.append("---\n" + "\n".join(lines) + "\n")
        except _NotPlain:
            out.append(_pyyaml([document], DUMPER))
    return "".join(out)


def _pyyaml(documents: list[Any], dumper: type) -> str:
    if not documents:
        return ""
    return yaml.dump_all(documents, Dumper=dumper, sort_keys=False, default_flow_style=False, explicit_start=True,
                         allow_unicode=True, width=4096)


class _NotPlain(Exception):
    """A value ``to_yaml`` leaves to PyYAML."""


# Plainly a name, a label or a path: written as it is unless YAML would read it as something else.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*\Z")
_STR = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()


@functools.lru_cache(maxsize=65536)
def _plainly(value: str) -> bool:
    return bool(_NAME.match(value)) and _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STR


def _key(value: Any) -> str:
    """A key that is plainly a name; any other (quoted, long) PyYAML may write as a complex key."""
    if not isinstance(value, str) or len(value) > 120 or not _plainly(value):
        raise _NotPlain
    return value


@functools.lru_cache(maxsize=65536)
def _string(value: str) -> str:
    if _plainly(value):
        return value
    if len(value) > 200:
        raise _NotPlain
    text = yaml.dump(value, Dumper=DUMPER, allow_unicode=True, width=4096)
    text = text[:-5] if text.endswith("\n...\n") else text[:-1]
    if "\n" in text:
        raise _NotPlain
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    if isinstance(value, dict) and not value:
        return "{}"
    if isinstance(value, list) and not value:
        return "[]"
    raise _NotPlain


def _mapping(mapping: dict[Any, Any], indent: int, lines: list[str], lead: str | None) -> None:
    """Block mapping at ``indent``; its first line begins with ``lead`` (a list item's dash) if given."""
    pad = " " * indent
    for key, value in mapping.items():
        prefix = pad if lead is None else lead
        lead = None
        if isinstance(value, dict) and value:
            lines.append(f"{prefix}{_key(key)}:")
            _mapping(value, indent + 2, lines, None)
        elif isinstance(value, list) and value:
            lines.append(f"{prefix}{_key(key)}:")
            _sequence(value, indent, lines, None)  # not indented under its key
        else:
            lines.append(f"{prefix}{_key(key)}: {_scalar(value)}")


def _sequence(items: list[Any], indent: int, lines: list[str], lead: str | None) -> None:
    pad = " " * indent
    for item in items:
        dash = (pad if lead is None else lead) + "- "
        lead = None
        if isinstance(item, dict) and item:
            _mapping(item, indent + 2, lines, dash)
        elif isinstance(item, list) and item:
            _sequence(item, indent + 2, lines, dash)
        else:
            lines.append(dash + _scalar(item))


def _plain(value: Any) -> Any:
    """Mappings (including read-only proxies) as dicts and tuples as lists, so a safe dumper accepts them."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
