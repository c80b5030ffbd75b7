from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.AddField(
            model_name='SendingLog',
            name='retry_at',
            field=fields.BigIntField(null=True),
        ),
        ops.AddIndex(
            model_name='SendingLog',
            index=Index(fields=['retry_at']),
        ),
    ]
