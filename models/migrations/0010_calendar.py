"""Scheduling (issue 17): a delivery's time zone, a recurrence as a calendar rule with its
start, the aggregation period, and an aggregating occurrence's period and executions."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from models.recurrence import AggregationPeriod
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0009_proofs')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Delivery',
            name='aggregation_period',
            field=fields.CharEnumField(default=AggregationPeriod.NONE, description='aggregation period', db_default='NONE', enum_type=AggregationPeriod, max_length=8),
        ),
        ops.AddField(
            model_name='Delivery',
            name='executions',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='Delivery',
            name='period_end',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Delivery',
            name='period_start',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Delivery',
            name='recurrence_rule',
            field=fields.CharField(null=True, max_length=500),
        ),
        ops.AddField(
            model_name='Delivery',
            name='recurrence_start',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Delivery',
            name='time_zone',
            field=fields.CharField(default='UTC', db_default='UTC', max_length=64),
        ),
    ]
