"""Flow ingestion: parsers of flow formats (pure, no Django) and the writer of raw flows.

- ``reader.parse_lines(lines, fmt)``: lines in, one FlowRecord | LineError | Skipped out per line.
- ``hubble`` / ``netsec``: the two formats (``reader.FORMATS``); ``records``: what they return.
- ``store.store_records(cluster, records)`` and ``store.ingest_lines(cluster, lines, fmt)``: the
  database side, batched and idempotent. ``manage.py import_flows`` is a thin shell around them.
"""
