"""Complaints and unsubscribes (issue 15): when each sending log first got one, the delivery's
counters, and the deny list's reason and time. Entries already on the deny list keep a null
reason (it was not recorded then)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from models.enums import DenylistReason
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_delivery_waiting')]

    initial = False

    operations = [
        ops.AddField(
            model_name='AddressStatus',
            name='denylist_reason',
            field=fields.CharEnumField(null=True, description='deny-list reason', enum_type=DenylistReason, max_length=16),
        ),
        ops.AddField(
            model_name='AddressStatus',
            name='denylisted_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Delivery',
            name='complaints',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='Delivery',
            name='unsubscriptions',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='SendingLog',
            name='complained_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='SendingLog',
            name='unsubscribed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
