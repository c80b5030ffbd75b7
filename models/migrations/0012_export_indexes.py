from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0011_send_time_waves')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='SendingLog',
            index=Index(fields=['delivery_id', 'id']),
        ),
        ops.AddIndex(
            model_name='TrackingLog',
            index=Index(fields=['delivery_id', 'id']),
        ),
    ]
