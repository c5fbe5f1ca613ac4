"""The raw flows' keys, for the insert rate and for a distributed PostgreSQL (docs/scaling.md).

* The dedupe key takes time before fingerprint (inserts land at the index's end), and the (cluster, time) index it
  makes redundant goes; so does the per-row foreign key check on the cluster (flows.models.RawFlow).
* On PostgreSQL the primary key becomes (cluster_id, id, time): a key Citus can enforce on a table distributed by
  cluster, and one that serves what the (cluster, id) index served (the watermark, the new flows of a cluster),
  so that index goes there. SQLite keeps its plain table and its index. Rebuilding the key of a big table takes
  a while: run this migration in a quiet hour.
"""

import django.db.models.deletion
from django.db import migrations, models

PG_FORWARD = [
    "ALTER TABLE flows_rawflow DROP CONSTRAINT flows_rawflow_pkey",
    "ALTER TABLE flows_rawflow ADD CONSTRAINT flows_rawflow_pkey PRIMARY KEY (cluster_id, id, time)",
    "DROP INDEX IF EXISTS raw_flow_cluster_id",
]
PG_BACKWARD = [
    "CREATE INDEX IF NOT EXISTS raw_flow_cluster_id ON flows_rawflow (cluster_id, id)",
    "ALTER TABLE flows_rawflow DROP CONSTRAINT flows_rawflow_pkey",
    "ALTER TABLE flows_rawflow ADD CONSTRAINT flows_rawflow_pkey PRIMARY KEY (id, time)",
]


def _run(statements: list[str]):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('flows', '0008_aggregation_errors'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='rawflow',
            name='uniq_raw_flow',
        ),
        migrations.RemoveIndex(
            model_name='rawflow',
            name='flows_rawfl_cluster_db35e1_idx',
        ),
        migrations.AlterField(
            model_name='rawflow',
            name='cluster',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, to='flows.cluster'),
        ),
        migrations.AddConstraint(
            model_name='rawflow',
            constraint=models.UniqueConstraint(fields=('cluster', 'time', 'fingerprint'), name='uniq_raw_flow'),
        ),
        migrations.RunPython(_run(PG_FORWARD), _run(PG_BACKWARD)),
    ]
