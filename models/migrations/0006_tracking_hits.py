"""Tracking logs: one row per recipient and open, or per recipient and link clicked, with the
number of hits and the latest one (issue 11, finding 13). Existing rows are merged first: per
sending log, kind and url, the oldest row stays, with `hits` the number of rows it stands for,
`at` the first hit and `last_at` the latest. Their link index was not stored: old clicks get
-1, -2, ... per distinct url of the recipient, which no new click (index 0 and up) can take.
The statements run unchanged on SQLite and PostgreSQL."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import UniqueConstraint

# The rows of one recipient, kind and url as the row being updated.
SAME = (
    "t.delivery_id = tracking_log.delivery_id AND t.sending_log_id = tracking_log.sending_log_id"
    " AND t.kind = tracking_log.kind AND COALESCE(t.url, '') = COALESCE(tracking_log.url, '')"
)

KEPT = (
    "id IN (SELECT MIN(id) FROM tracking_log"
    " GROUP BY delivery_id, sending_log_id, kind, COALESCE(url, ''))"
)


class Migration(migrations.Migration):
    dependencies = [('models', '0005_operator_revocation_delivery_version')]

    initial = False

    operations = [
        ops.AddField(
            model_name='TrackingLog',
            name='hits',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='TrackingLog',
            name='last_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='TrackingLog',
            name='link',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.RunSQL(
            [
                # The oldest row of each group stays and takes the group's figures.
                f"UPDATE tracking_log SET hits = (SELECT COUNT(*) FROM tracking_log t WHERE {SAME}),"
                f" last_at = (SELECT MAX(t.at) FROM tracking_log t WHERE {SAME}) WHERE {KEPT}",
                f"UPDATE tracking_log SET at = (SELECT MIN(t.at) FROM tracking_log t WHERE {SAME})"
                f" WHERE {KEPT}",
                f"DELETE FROM tracking_log WHERE NOT ({KEPT})",
                "UPDATE tracking_log SET link = -(SELECT COUNT(DISTINCT t.url) FROM tracking_log t"
                " WHERE t.sending_log_id = tracking_log.sending_log_id AND t.kind = 'CLICK'"
                " AND t.url <= tracking_log.url) WHERE kind = 'CLICK'",
            ]
        ),
        ops.AddConstraint(
            model_name='TrackingLog',
            constraint=UniqueConstraint(fields=('sending_log_id', 'kind', 'link'), name=None),
        ),
    ]
