"""Proofs (issue 14): the proof table, and a delivery's requireProof and the time of its
last proof since its last edit."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0008_complaints_unsubscribes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Proof',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('delivery', fields.ForeignKeyField('models.Delivery', source_field='delivery_id', db_constraint=True, to_field='id', related_name='proofs', on_delete=OnDelete.CASCADE)),
                ('number', fields.IntField()),
                ('recipients', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('sent_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_by', fields.CharField(null=True, max_length=200)),
                ('operator_id', fields.IntField(null=True)),
                ('version', fields.IntField()),
            ],
            options={'table': 'proof', 'app': 'models', 'unique_together': (('delivery_id', 'number'),), 'indexes': [Index(fields=['operator_id', 'sent_at'])], 'pk_attr': 'id', 'table_description': "One proof: its number in the delivery, who sent it and when, each recipient's outcome."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Delivery',
            name='proofed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Delivery',
            name='require_proof',
            field=fields.BooleanField(default=False, db_default=False),
        ),
    ]
