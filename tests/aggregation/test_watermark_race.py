"""Aggregation never moves its watermark past a raw flow batch that is not committed yet.

PostgreSQL hands out ids before commit, so aggregation waits on the ingest advisory lock; SQLite has a
single writer, so aggregation's IMMEDIATE transaction waits for the batch. Either way it must wait.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections, transaction

from flows.aggregate import aggregate_cluster
from flows.ingest.records import Endpoint, FlowRecord
from flows.models import Communication
from flows.store.raw_flows import store_records
from tests.factories import T0


def record(port: int) -> FlowRecord:
    return FlowRecord(time=T0 + timedelta(seconds=port), protocol="TCP", source=Endpoint("10.244.1.1", port),
                      destination=Endpoint("203.0.113.1", 443), is_reply=False, tcp_flags=("SYN",))


@pytest.mark.django_db(transaction=True)
def test_aggregation_waits_for_batches_in_flight(cluster):
    inserted, release = threading.Event(), threading.Event()

    def slow_import() -> None:
        try:
            with transaction.atomic():
                store_records(cluster, [record(40000)])  # ids handed out, not committed yet
                inserted.set()
                release.wait(30)
        finally:
            connections.close_all()

    def aggregate() -> None:
        try:
            aggregate_cluster(cluster)
        finally:
            connections.close_all()

    importer = threading.Thread(target=slow_import)
    importer.start()
    assert inserted.wait(30)
    aggregator = threading.Thread(target=aggregate)
    aggregator.start()
    aggregator.join(timeout=2)
    still_waiting = aggregator.is_alive()
    release.set()
    importer.join(30)
    aggregator.join(30)
    assert still_waiting, "aggregation read its watermark while a batch was uncommitted"
    assert Communication.objects.get().connections == 1
