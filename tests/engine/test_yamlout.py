"""``to_yaml`` writes what PyYAML writes, to the byte, for any document of the types policies are made of:
block mappings and lists at any depth, empty ones, and strings YAML would read as something else (numbers,
booleans, nulls, dates, indicators) or that need quotes; what it does not write itself goes to PyYAML."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.engine import to_yaml

AWKWARD = ["", " ", "a b", " a", "a ", "yes", "No", "on", "OFF", "true", "False", "null", "~", "Null", "1", "8080",
           "0x1F", "0o17", "0777", "1_000", "1:20", "1e3", ".5", "-1", "+1", ".inf", "-.inf", ".NaN", "2001-12-14",
           "2026-11-25T13:15:09Z", "<<", "=", "-", "-a", "a-", "--", "---", "...", "?", "? a", "a: b", "a:b", "a #b",
           "#a", "@a", "`a", "%a", "!a", "&a", "*a", "|", ">", "[a]", "{a}", ",a", "a,b", "'a'", '"a"', "a'b", 'a"b',
           "Ω", "naïve", "🙂", "10.0.0.0/8", "::1/128", "fe80::/10", "kubernetes.io/metadata.name",
           "app.kubernetes.io/managed-by", "a\tb", "a\\b", "x" * 250, "multi\nline", "\x07bell"]
strings = st.one_of(st.sampled_from(AWKWARD), st.text(max_size=12),
                    st.from_regex(r"[a-z0-9][a-z0-9._/-]{0,20}", fullmatch=True))
scalars = st.one_of(strings, st.integers(-10**6, 10**6), st.booleans(), st.none(), st.floats(allow_nan=False))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)),
    max_leaves=25,
).filter(lambda d: isinstance(d, dict))


def pyyaml(docs: list) -> str:
    return to_yaml(docs, dumper=yaml.CSafeDumper)


@settings(max_examples=600, deadline=None)
@given(st.lists(documents, max_size=3))
def test_to_yaml_writes_what_pyyaml_writes(docs: list) -> None:
    assert to_yaml(docs) == pyyaml(docs)


def test_each_awkward_string_as_key_value_and_list_item() -> None:
    for value in AWKWARD:
        doc = {value or "k": value, "list": [value, {value or "k": [value]}], "nested": {"x": {value or "k": value}}}
        assert to_yaml([doc]) == pyyaml([doc]), value
