from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.enums import Channel, DeliveryStatus, FailureType, FeedbackMode, SendingLogStatus
from models.tracking import TrackingKind
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='AddressStatus',
            fields=[
                ('address', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=320)),
                ('error_count', fields.IntField(default=0)),
                ('last_error_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('quarantined_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('quarantine_reason', fields.CharField(null=True, max_length=32)),
                ('denylisted', fields.BooleanField(default=False)),
            ],
            options={'table': 'address_status', 'app': 'models', 'pk_attr': 'address', 'table_description': 'One row per address that has ever failed or been deny-listed.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Delivery',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('label', fields.CharField(max_length=255)),
                ('channel', fields.CharEnumField(description='channel', enum_type=Channel, max_length=8)),
                ('subject', fields.CharField(null=True, max_length=998)),
                ('body', fields.TextField(unique=False)),
                ('status', fields.CharEnumField(default=DeliveryStatus.DRAFT, description='status', enum_type=DeliveryStatus, max_length=24)),
                ('feedback_mode', fields.CharEnumField(description='feedback mode', enum_type=FeedbackMode, max_length=8)),
                ('audience', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('scheduled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('validity_period', fields.IntField()),
                ('require_approval', fields.BooleanField(default=False)),
                ('approved_by', fields.CharField(null=True, max_length=200)),
                ('approved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('confirmed_by', fields.CharField(null=True, max_length=200)),
                ('confirmed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('valid_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('figures_final', fields.BooleanField(default=False)),
                ('stopped_by', fields.CharField(null=True, max_length=200)),
                ('failure_message', fields.TextField(null=True, unique=False)),
                ('warnings', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('recurrence_interval', fields.IntField(null=True)),
                ('recurrence_count', fields.IntField(null=True)),
                ('confirm_each_occurrence', fields.BooleanField(default=False)),
                ('next_occurrence_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('occurrences_created', fields.IntField(default=0)),
                ('parent', fields.ForeignKeyField('models.Delivery', source_field='parent_id', null=True, db_constraint=True, to_field='id', related_name='occurrences', on_delete=OnDelete.CASCADE)),
                ('to_send', fields.IntField(default=0)),
                ('excluded', fields.IntField(default=0)),
                ('processed', fields.IntField(default=0)),
                ('sent', fields.IntField(default=0)),
                ('pending', fields.IntField(default=0)),
                ('failed', fields.IntField(default=0)),
                ('opens', fields.IntField(default=0)),
                ('clicks', fields.IntField(default=0)),
                ('stats_computed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'delivery', 'app': 'models', 'indexes': [Index(fields=['status', 'scheduled_at']), Index(fields=['status', 'valid_until']), Index(fields=['parent_id', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FeedbackEvent',
            fields=[
                ('event_id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=200)),
                ('message_id', fields.CharField(max_length=128)),
                ('type', fields.CharField(max_length=16)),
                ('reason', fields.CharField(null=True, max_length=32)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'feedback_event', 'app': 'models', 'pk_attr': 'event_id', 'table_description': 'Each report the MTA sent, kept for idempotency and for the record.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Operator',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=200)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('roles', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'operator', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Profile',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('email', fields.CharField(null=True, unique=True, max_length=320)),
                ('phone', fields.CharField(null=True, max_length=32)),
                ('first_name', fields.CharField(null=True, max_length=200)),
                ('last_name', fields.CharField(null=True, max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'profile', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SendingLog',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('delivery', fields.ForeignKeyField('models.Delivery', source_field='delivery_id', db_constraint=True, to_field='id', related_name='sending_logs', on_delete=OnDelete.CASCADE)),
                ('profile', fields.ForeignKeyField('models.Profile', source_field='profile_id', null=True, db_constraint=True, to_field='id', related_name='sending_logs', on_delete=OnDelete.SET_NULL)),
                ('address', fields.CharField(max_length=320)),
                ('status', fields.CharEnumField(default=SendingLogStatus.TO_SEND, description='status', enum_type=SendingLogStatus, max_length=8)),
                ('excluded', fields.BooleanField(default=False)),
                ('failure_type', fields.CharEnumField(null=True, description='failure type', enum_type=FailureType, max_length=8)),
                ('failure_reason', fields.CharField(null=True, max_length=32)),
                ('message_id', fields.CharField(null=True, unique=True, max_length=128)),
                ('retries', fields.IntField(default=0)),
                ('event_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('claimed_until', fields.BigIntField(null=True)),
            ],
            options={'table': 'sending_log', 'app': 'models', 'indexes': [Index(fields=['delivery_id', 'status']), Index(fields=['profile_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One per targeted recipient. Excluded recipients get one too (status IGNORED, excluded).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TrackingLog',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('delivery', fields.ForeignKeyField('models.Delivery', source_field='delivery_id', db_constraint=True, to_field='id', related_name='tracking_logs', on_delete=OnDelete.CASCADE)),
                ('sending_log', fields.ForeignKeyField('models.SendingLog', source_field='sending_log_id', db_constraint=True, to_field='id', related_name='tracking_logs', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='kind', enum_type=TrackingKind, max_length=8)),
                ('url', fields.TextField(null=True, unique=False)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'tracking_log', 'app': 'models', 'indexes': [Index(fields=['delivery_id', 'kind', 'sending_log_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
