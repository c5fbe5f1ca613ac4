"""The benchmark runs end to end on a small cluster (timing is reported by ``make bench``, never asserted)."""

from __future__ import annotations

from policies.engine import bench


def test_bench_runs_and_reports_throughput() -> None:
    report = bench.run(pods=300, policies=60, probes=2_000, workloads=30, namespaces=5, rows_per_workload=5, quiet=True)
    assert report["probes"] == 2_000
    assert report["generated"] == 30
    assert report["generation_failures"] == 0
    assert 0 < report["allowed"] < 2_000
    assert report["probes_per_second"] > 0
    assert report["policies_per_second"] > 0
