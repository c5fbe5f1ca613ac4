"""The database writers of what ``flows.ingest`` reads.

- ``raw_flows.store_records`` / ``raw_flows.ingest_lines``: flow records as raw flows, batched and idempotent;
  ``parallel``: one input parsed and stored by several processes (``import_flows --workers N``).
- ``inventory.apply_snapshot``: the one write path of the inventory (file imports and the live sync).
"""
