from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_claim_order_index')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Delivery',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='Operator',
            name='revoked_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
