from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.audit import AuditAction, AuditActor
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("models", "0002_soft_retries")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AuditEvent",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "action",
                    fields.CharEnumField(
                        description="action", enum_type=AuditAction, max_length=40
                    ),
                ),
                (
                    "actor",
                    fields.CharEnumField(description="actor", enum_type=AuditActor, max_length=16),
                ),
                ("operator_id", fields.IntField(null=True)),
                ("operator_name", fields.CharField(null=True, max_length=200)),
                ("delivery_id", fields.IntField(null=True)),
                ("delivery_label", fields.CharField(null=True, max_length=255)),
                (
                    "detail",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
            ],
            options={
                "table": "audit_event",
                "app": "models",
                "indexes": [
                    Index(fields=["delivery_id", "id"]),
                    Index(fields=["operator_id", "id"]),
                    Index(fields=["action", "id"]),
                    Index(fields=["at"]),
                ],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
    ]
