"""Per-recipient send time and waves (issue 17, sections 3 and 4): a profile's time zone, a
delivery's options and schedule, each sending log's due time, and a partial index that keeps
the claim of a timed delivery's due messages cheap: only TO_SEND logs that have a due time are
in it (a delivery sent at once writes nothing to it), in due-time order (bench/claim_due.py)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0010_calendar')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Delivery',
            name='first_due_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Delivery',
            name='paused_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Delivery',
            name='send_in_recipient_time_zone',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Delivery',
            name='send_times',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Delivery',
            name='wave_anchor',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Delivery',
            name='wave_first_size',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Delivery',
            name='wave_interval_minutes',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Delivery',
            name='wave_size',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Profile',
            name='time_zone',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='SendingLog',
            name='due_at',
            field=fields.BigIntField(null=True),
        ),
        ops.RunSQL(
            "CREATE INDEX sending_log_due ON sending_log (delivery_id, due_at, id)"
            " WHERE status = 'TO_SEND' AND due_at IS NOT NULL",
            reverse_sql="DROP INDEX sending_log_due",
        ),
    ]
