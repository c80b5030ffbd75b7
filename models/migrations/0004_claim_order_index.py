from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0003_audit_trail')]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name='SendingLog',
            name=None,
            fields=['delivery_id', 'status'],
        ),
        ops.AddIndex(
            model_name='SendingLog',
            index=Index(fields=['delivery_id', 'status', 'id']),
        ),
    ]
