"""Retention: raw flows partitioned by day on PostgreSQL; daily and sealed communications.

The model changes are ordinary operations on both databases (the raw flows' dedupe key takes ``time``, the
index of their cluster column becomes one on (cluster, id), communications get ``granularity`` and ``sealed``). On PostgreSQL a
last step rebuilds ``flows_rawflow`` as a table partitioned by range of ``time``, one partition per UTC day
present, keeping every row, id, constraint, index, foreign key and the identity sequence's position (ids
must never be handed out twice: aggregation's watermark is an id). SQLite keeps the plain table.

The rebuild copies the table under an ACCESS EXCLUSIVE lock, inside the migration's transaction: ingestion
waits for it (plan it like any table rewrite; about a minute per ten million rows on ordinary hardware). It
is reversible: going back copies the rows into a plain table again, after which the old (cluster,
fingerprint) constraint is restored, which fails with a clear IntegrityError should two rows differ only by
their time.

The two conversion functions work on any plain table partitioned the same way, so that tests can run them
on a table of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import migrations, models
from django.db.models import Q


@dataclass
class _Shape:
    """What a table has besides its columns, read from the catalog, to be made again on its copy."""

    primary_key: tuple[str, list[str]] | None = None
    uniques: list[tuple[str, list[str]]] = field(default_factory=list)
    foreign_keys: list[tuple[str, str]] = field(default_factory=list)  # name, definition
    indexes: list[tuple[str, list[str], bool]] = field(default_factory=list)  # name, columns, unique
    identities: list[tuple[str, str, int, bool]] = field(default_factory=list)  # column, sequence, last, called


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(cursor: Any, oid: int, attnums: list[int]) -> list[str]:
    cursor.execute("SELECT attnum, attname FROM pg_attribute WHERE attrelid = %s AND attnum = ANY(%s)",
                   [oid, list(attnums)])
    names = dict(cursor.fetchall())
    return [names[n] for n in attnums]


def _shape(cursor: Any, table: str) -> _Shape:
    cursor.execute("SELECT %s::regclass::oid", [table])
    oid = cursor.fetchone()[0]
    shape = _Shape()
    cursor.execute(
        "SELECT conname, contype, conkey, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s AND contype IN ('p', 'u', 'f') ORDER BY conname", [oid])
    for name, kind, keys, definition in cursor.fetchall():
        if kind == "p":
            shape.primary_key = (name, _columns(cursor, oid, keys))
        elif kind == "u":
            shape.uniques.append((name, _columns(cursor, oid, keys)))
        else:
            shape.foreign_keys.append((name, definition))
    # Indexes that no constraint owns (those come back with their constraint).
    cursor.execute(
        "SELECT c.relname, x.indkey::int2[], x.indisunique, x.indexprs IS NOT NULL OR x.indpred IS NOT NULL, "
        "am.amname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am am ON am.oid = c.relam "
        "WHERE x.indrelid = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid) "
        "ORDER BY c.relname", [oid])
    for name, keys, unique, partial, method in cursor.fetchall():
        if partial or method not in ("btree", "btree_partitioned"):
            raise RuntimeError(f"{table}: index {name} is not a plain btree on columns; convert it by hand")
        shape.indexes.append((name, _columns(cursor, oid, list(keys)), unique))
    cursor.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s AND attidentity <> '' ORDER BY attnum",
                   [oid])
    for (column,) in cursor.fetchall():
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
        sequence = cursor.fetchone()[0]
        cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
        last, called = cursor.fetchone()
        shape.identities.append((column, sequence, last, called))
    return shape


def _day_bounds(day: date) -> str:
    def bound(d: date) -> str:
        return datetime.combine(d, time(0), tzinfo=UTC).isoformat(sep=" ")
    return f"FOR VALUES FROM ('{bound(day)}') TO ('{bound(day + timedelta(days=1))}')"


def _rebuild(cursor: Any, table: str, column: str, *, partitioned: bool) -> list[str]:
    """Copy ``table`` into a new table (partitioned by day on ``column``, or plain), then take its place.

    Everything the catalog says about the old table is made again on the new one, under the same names:
    the primary key (with ``column`` added, or taken out again), unique constraints, foreign keys, plain
    indexes, CHECK and NOT NULL constraints, defaults, and each identity column with its sequence where
    the old one stopped. Returns the names of the day partitions made.
    """
    new = f"{table}__rebuild"
    cursor.execute(f"LOCK TABLE {_quote(table)} IN ACCESS EXCLUSIVE MODE")
    shape = _shape(cursor, table)
    for name, columns in shape.uniques:
        if partitioned and column not in columns:
            raise RuntimeError(f"{table}: unique constraint {name} lacks {column}, the partition key; "
                               "a partitioned table cannot enforce it")
    like = "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMMENTS"
    tail = f" PARTITION BY RANGE ({_quote(column)})" if partitioned else ""
    cursor.execute(f"CREATE TABLE {_quote(new)} (LIKE {_quote(table)} {like}){tail}")
    partitions: list[str] = []
    if partitioned:
        cursor.execute(f"SELECT DISTINCT ({_quote(column)} AT TIME ZONE 'UTC')::date FROM {_quote(table)} ORDER BY 1")
        for (day,) in cursor.fetchall():
            name = f"{table}_p{day:%Y%m%d}"
            cursor.execute(f"CREATE TABLE {_quote(name)} PARTITION OF {_quote(new)} {_day_bounds(day)}")
            partitions.append(name)
    # Rows first, indexes after: building an index once is cheaper than keeping it up to date row by row.
    cursor.execute(f"INSERT INTO {_quote(new)} OVERRIDING SYSTEM VALUE SELECT * FROM {_quote(table)}")
    renames: list[tuple[str, str]] = []  # (temporary, final) names of what owns an index: unique in the schema

    def temporary(name: str) -> str:
        tmp = f"{name[:50]}__r{len(renames)}"
        renames.append((tmp, name))
        return tmp

    if shape.primary_key:
        name, columns = shape.primary_key
        if partitioned and column not in columns:
            columns = [*columns, column]
        elif not partitioned and len(columns) > 1:
            columns = [c for c in columns if c != column]
        cols = ", ".join(map(_quote, columns))
        cursor.execute(f"ALTER TABLE {_quote(new)} ADD CONSTRAINT {_quote(temporary(name))} PRIMARY KEY ({cols})")
    for name, columns in shape.uniques:
        cols = ", ".join(map(_quote, columns))
        cursor.execute(f"ALTER TABLE {_quote(new)} ADD CONSTRAINT {_quote(temporary(name))} UNIQUE ({cols})")
    for name, columns, unique in shape.indexes:
        if unique and partitioned and column not in columns:
            raise RuntimeError(f"{table}: unique index {name} lacks {column}, the partition key")
        cols = ", ".join(map(_quote, columns))
        kind = "UNIQUE INDEX" if unique else "INDEX"
        cursor.execute(f"CREATE {kind} {_quote(temporary(name))} ON {_quote(new)} ({cols})")
    for name, definition in shape.foreign_keys:
        # Constraint names without an index are per table: the final name can be used at once.
        cursor.execute(f"ALTER TABLE {_quote(new)} ADD CONSTRAINT {_quote(name)} {definition}")
    new_sequences = []
    for col, sequence, last, called in shape.identities:
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [new, col])
        new_sequence = cursor.fetchone()[0]
        cursor.execute("SELECT setval(%s, %s, %s)", [new_sequence, last, called])
        new_sequences.append((new_sequence, sequence))
    cursor.execute(f"DROP TABLE {_quote(table)}")
    cursor.execute(f"ALTER TABLE {_quote(new)} RENAME TO {_quote(table)}")
    for tmp, final in renames:
        cursor.execute(f"ALTER INDEX {_quote(tmp)} RENAME TO {_quote(final)}")
    for new_sequence, old_sequence in new_sequences:
        # Qualified names as pg_get_serial_sequence gives them; RENAME TO takes the bare name.
        cursor.execute(f"ALTER SEQUENCE {new_sequence} RENAME TO {_quote(old_sequence.split('.')[-1].strip(chr(34)))}")
    return partitions


def partition_by_day(cursor: Any, table: str, column: str = "time") -> list[str]:
    """Make plain ``table`` partitioned by range of ``column``, a partition per UTC day its rows have."""
    return _rebuild(cursor, table, column, partitioned=True)


def unpartition(cursor: Any, table: str, column: str = "time") -> None:
    """Make partitioned ``table`` plain again, every row kept; the partitions go."""
    _rebuild(cursor, table, column, partitioned=False)


def _is_partitioned(cursor: Any, table: str) -> bool:
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [table])
    return cursor.fetchone()[0] == "p"


def forwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite keeps the plain table: retention deletes its rows in batches
    with schema_editor.connection.cursor() as cursor:
        if not _is_partitioned(cursor, "flows_rawflow"):
            partition_by_day(cursor, "flows_rawflow")


def backwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if _is_partitioned(cursor, "flows_rawflow"):
            unpartition(cursor, "flows_rawflow")


class Migration(migrations.Migration):

    dependencies = [
        ('flows', '0006_cluster_sync_status'),
    ]

    operations = [
        migrations.AddField(
            model_name='communication',
            name='granularity',
            field=models.CharField(choices=[('hour', 'Hour'), ('day', 'Day')], default='hour', max_length=4),
        ),
        migrations.AddField(
            model_name='communication',
            name='sealed',
            field=models.BooleanField(
                default=False,
                help_text='its raw flows are pruned: aggregation no longer rebuilds it (daily rows always)'),
        ),
        migrations.AlterField(
            model_name='communication',
            name='bucket',
            field=models.DateTimeField(help_text='start of the hour, or of the day (UTC) for a daily row'),
        ),
        migrations.AddConstraint(
            model_name='communication',
            constraint=models.CheckConstraint(
                condition=Q(granularity='hour') | Q(sealed=True), name='communication_daily_sealed'),
        ),
        migrations.AddIndex(
            model_name='communication',
            index=models.Index(condition=Q(sealed=False), fields=['cluster', 'bucket'], name='communication_open'),
        ),
        migrations.AlterField(
            model_name='rawflow',
            name='cluster',
            field=models.ForeignKey(db_index=False, on_delete=models.deletion.CASCADE, to='flows.cluster'),
        ),
        migrations.AddIndex(
            model_name='rawflow',
            index=models.Index(fields=['cluster', 'id'], name='raw_flow_cluster_id'),
        ),
        migrations.RemoveConstraint(
            model_name='rawflow',
            name='uniq_raw_flow',
        ),
        migrations.AddConstraint(
            model_name='rawflow',
            constraint=models.UniqueConstraint(fields=('cluster', 'fingerprint', 'time'), name='uniq_raw_flow'),
        ),
        # Last, on the table the operations above left: its constraints are what the partitioned one gets.
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
