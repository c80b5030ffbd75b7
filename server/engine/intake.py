"""One path for MTA reports, whether they come from the webhook or from the simulator."""

from datetime import timedelta

from models.delivery import utcnow
from models.feedback import Event, FeedbackResult, apply_feedback
from models.quarantine import QuarantinePolicy
from server.bus import DELIVERY_TOPIC, EventBus


class FeedbackIntake:
    def __init__(self, bus: EventBus, threshold: int = 5, gap_hours: float = 24.0) -> None:
        self.bus = bus
        self.policy = QuarantinePolicy(threshold=threshold, min_gap=timedelta(hours=gap_hours))

    async def __call__(self, events: list[Event]) -> FeedbackResult:
        result = await apply_feedback(events, utcnow(), self.policy)
        for delivery_id in sorted(result.deliveries):  # after the commit
            await self.changed(delivery_id)
        return result

    async def changed(self, delivery_id: int) -> None:
        """Tell dashboards a delivery's figures moved (after the commit that moved them)."""
        await self.bus.publish(DELIVERY_TOPIC, {"id": delivery_id})
