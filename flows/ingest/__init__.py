"""Readers of every input format: pure Python (no Django, no ORM), records in, records out.

- ``reader.parse_lines(lines, fmt)``: flow lines in, one FlowRecord | LineError | Skipped out per line;
  ``hubble`` and ``netsec`` are the two flow formats (``reader.FORMATS``), ``records`` what they return.
- ``inventory``: Kubernetes objects (a ``kubectl get ... -o yaml|json`` dump or API list items) as
  frozen records and a ``Snapshot``.

What writes these records to the database is ``flows.store``; a test keeps this package free of Django.
"""
