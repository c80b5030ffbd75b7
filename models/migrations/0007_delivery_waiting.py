from tortoise import migrations
from tortoise.migrations import operations as ops
from models.enums import WaitingReason
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_tracking_hits')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Delivery',
            name='waiting_attempts',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='Delivery',
            name='waiting_cause',
            field=fields.CharField(null=True, max_length=100),
        ),
        ops.AddField(
            model_name='Delivery',
            name='waiting_reason',
            field=fields.CharEnumField(null=True, description='waiting reason', enum_type=WaitingReason, max_length=24),
        ),
        ops.AddField(
            model_name='Delivery',
            name='waiting_retry_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Delivery',
            name='waiting_since',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
