"""Drop two indexes that another index starts with (pod.namespace_id: uniq_pod; servicebackend.cluster_id: its
(cluster, ip, port) index): the planner chose them for aggregation's lookups when statistics were missing."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('flows', '0011_data_version'),
    ]

    operations = [
        migrations.AlterField(
            model_name='pod',
            name='namespace',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='pods', to='flows.namespace'),
        ),
        migrations.AlterField(
            model_name='servicebackend',
            name='cluster',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='flows.cluster'),
        ),
    ]
