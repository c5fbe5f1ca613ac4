# The raw flows' dedupe key takes time before fingerprint (inserts land at the index's end), the (cluster, time) index
# it makes redundant goes, and so does the per-row foreign key check on the cluster (flows.models.RawFlow).


import django.db.models.deletion
from django.db import migrations, models


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
    ]
