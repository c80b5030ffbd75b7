"""KPIs over time (`Delivery.kpiHistory`, issue 16), and a recurring delivery's counters as the
sums of its occurrences' (SPEC §5, issue 14): existing recurring deliveries with occurrences get
their sums now; the engine keeps them from then on. The statements run unchanged on SQLite and
PostgreSQL."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import UniqueConstraint

COUNTERS = (
    "to_send", "processed", "sent", "pending", "failed", "opens", "clicks", "complaints",
    "unsubscriptions",
)
HAS_OCCURRENCES = "EXISTS (SELECT 1 FROM delivery c WHERE c.parent_id = delivery.id)"


class Migration(migrations.Migration):
    dependencies = [('models', '0012_export_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='KpiPoint',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('delivery', fields.ForeignKeyField('models.Delivery', source_field='delivery_id', db_constraint=True, to_field='id', related_name='kpi_points', on_delete=OnDelete.CASCADE)),
                ('slot', fields.BigIntField()),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('to_send', fields.IntField(default=0)),
                ('processed', fields.IntField(default=0)),
                ('sent', fields.IntField(default=0)),
                ('pending', fields.IntField(default=0)),
                ('failed', fields.IntField(default=0)),
                ('opens', fields.IntField(default=0)),
                ('clicks', fields.IntField(default=0)),
                ('complaints', fields.IntField(default=0)),
                ('unsubscriptions', fields.IntField(default=0)),
            ],
            options={'table': 'kpi_point', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddConstraint(
            model_name='KpiPoint',
            constraint=UniqueConstraint(fields=('delivery_id', 'slot'), name=None),
        ),
        ops.RunSQL(
            [
                "UPDATE delivery SET "
                + ", ".join(
                    f"{name} = (SELECT SUM(c.{name}) FROM delivery c WHERE c.parent_id = delivery.id)"
                    for name in COUNTERS
                )
                + f" WHERE {HAS_OCCURRENCES}"
            ]
        ),
    ]
