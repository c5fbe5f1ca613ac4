"""Hostile dumps, for the pure reader: alias bombs, aliases that contain themselves, deep nesting (YAML and JSON)
and bytes that are not UTF-8 fail fast with an InventoryError naming file, line and document. What PyYAML's own
dumper writes (aliases for a value used twice) and YAML merge keys still read as before. No database."""

from __future__ import annotations

import gzip
import json
import time

import pytest
import yaml

from flows.ingest.inventory import MAX_DEPTH, InventoryError, parse_bytes, read_sources


def _problem(raw: bytes, source: str = "dump.yaml") -> str:
    with pytest.raises(InventoryError) as caught:
        parse_bytes(raw, source)
    [problem] = caught.value.problems
    return problem


def _nested(levels: int, *, flow: bool) -> bytes:
    """A ConfigMap (a kind the reader skips) whose data nests ``levels`` deep, the document being level 1."""
    if flow:
        return b"kind: ConfigMap\nx: " + b"[" * (levels - 1) + b"]" * (levels - 1) + b"\n"
    lines = [b"  " * i + b"- " for i in range(levels - 1)]
    return b"kind: ConfigMap\nx:\n" + b"\n".join(lines) + b"1\n"


BOMB = b"""apiVersion: v1
kind: ConfigMap
metadata: {name: lol, namespace: default}
data:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_an_alias_bomb_fails_fast_naming_file_and_line() -> None:
    start = time.perf_counter()
    problem = _problem(BOMB)
    assert time.perf_counter() - start < 1
    # The first value whose expansion passes the allowance: f, on line 10 (9**6 lol).
    assert problem.startswith("dump.yaml:10: document 1: YAML aliases expand this value to "), problem
    assert "alias bomb" in problem


def test_a_bomb_in_a_policy_of_a_list_is_refused_before_any_item_is_parsed() -> None:
    items = BOMB.replace(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol, namespace: default}\n", b"")
    raw = (b"apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n"
           b"  metadata: {name: p, namespace: default}\n  spec:\n    podSelector: {}\n    ingress:\n    - from:\n"
           b"      - podSelector:\n          matchLabels: {}\n  "
           + items.replace(b"\n  ", b"\n    ").replace(b"data:", b"  annotations:"))
    assert "YAML aliases expand" in _problem(raw)


def test_an_alias_inside_the_value_it_names_is_refused() -> None:
    problem = _problem(b"kind: Namespace\nmetadata:\n  name: a\n  labels: &l {x: *l}\n")
    assert problem == "dump.yaml:4: document 1: a YAML alias refers to a value containing it"


def test_aliases_as_pyyaml_writes_them_still_read() -> None:
    labels = {"app": "web"}
    items = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop",
                                                                     "labels": labels},
         "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}}},
    ]
    text = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items})
    assert "&id001" in text and "*id001" in text
    [workload], _ = parse_bytes(text.encode(), "dump.yaml")
    assert (workload.labels, workload.template_labels, workload.selector) == (labels, labels, {"matchLabels": labels})


def test_merge_keys_still_read() -> None:
    raw = b"kind: List\nitems:\n- kind: Namespace\n  metadata: &m {name: a, labels: {team: x}}\n" \
          b"- kind: Namespace\n  metadata:\n    <<: *m\n    name: b\n"
    objects, _ = parse_bytes(raw, "dump.yaml")
    assert [(o.name, o.labels) for o in objects] == [("a", {"team": "x"}), ("b", {"team": "x"})]


def test_aliases_may_not_nest_a_document_too_deeply_either() -> None:
    chain = b"".join(b"a%d: &a%d [*a%d]\n" % (i, i, i - 1) for i in range(1, MAX_DEPTH + 2))
    problem = _problem(b"kind: ConfigMap\na0: &a0 [1]\n" + chain)
    assert f"nested deeper than {MAX_DEPTH} levels" in problem and problem.startswith("dump.yaml:")


@pytest.mark.parametrize("flow", [True, False], ids=["flow", "block"])
def test_yaml_nested_up_to_the_limit_reads_and_deeper_is_refused(flow: bool) -> None:
    assert parse_bytes(_nested(MAX_DEPTH, flow=flow), "dump.yaml") == ([], {"ConfigMap": 1})
    problem = _problem(_nested(MAX_DEPTH + 1, flow=flow))
    assert problem.endswith(f": document 1: nested deeper than {MAX_DEPTH} levels, more than any Kubernetes "
                            "object needs"), problem
    line = 2 if flow else 2 + MAX_DEPTH  # where the level past the limit starts
    assert problem.startswith(f"dump.yaml:{line}: "), problem


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 1100, 100_000])
def test_deep_json_is_refused(levels: int) -> None:
    """orjson refuses more than 1024 levels and the fallback decoder recurses: neither may escape as a crash."""
    deep = b'{"kind": "ConfigMap", "x": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"
    assert f"nested deeper than {MAX_DEPTH} levels" in _problem(deep, "dump.json")
    second = b'{"kind": "Namespace", "metadata": {"name": "a"}}\n' + deep
    assert _problem(second, "dump.json").startswith("dump.json:2: document 2: nested deeper than")
    fine = b'{"kind": "ConfigMap", "x": ' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    assert parse_bytes(fine, "dump.json") == ([], {"ConfigMap": 1})


def test_deep_yaml_past_libyaml_own_limit_is_a_clear_problem() -> None:
    problem = _problem(b"kind: ConfigMap\nx: " + b"[" * 5000 + b"]" * 5000)
    assert problem.startswith("dump.yaml:2: document 1: not valid YAML:"), problem


def test_non_utf8_names_the_byte() -> None:
    assert _problem(b"kind: Namespace\nmetadata: {name: caf\xe9}\n") == "dump.yaml: not UTF-8 text (byte 36)"


def test_files_and_gzip_name_the_file(tmp_path) -> None:
    path = tmp_path / "bomb.yaml.gz"
    path.write_bytes(gzip.compress(BOMB))
    deep = tmp_path / "deep.json"
    deep.write_text(json.dumps({"kind": "ConfigMap", "x": json.loads("[" * 80 + "]" * 80)}))
    with pytest.raises(InventoryError) as caught:
        read_sources([path, deep])
    assert [p.split(":")[0] for p in caught.value.problems] == [str(path), str(deep)]


@pytest.mark.parametrize("raw", [
    b'apiVersion: v1\nkind: Namespace\nmetadata: {name: "shop\\0"}\n',
    b'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {"team\\x00": x}\n',
    b'{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"a": "b\\u0000"}}}',
])
def test_a_nul_character_is_refused_naming_the_field(raw: bytes) -> None:
    # PostgreSQL stores no NUL: refused here, with its place, rather than as a database error later.
    problem = _problem(raw)
    assert problem.startswith(("dump.yaml:1: document 1", "dump.yaml: document 1")) and "metadata." in problem
    assert problem.endswith("a NUL character is not allowed")


def test_an_upload_with_no_document_is_refused() -> None:
    for raw in (b"", b"---\n", b"null\n", b"# nothing\n"):
        assert "no document" in _problem(raw)
    assert parse_bytes(b"apiVersion: v1\nkind: List\nitems: []\n", "dump.yaml") == ([], {})  # an empty cluster
