"""Proofs reach the configured MTA through this (graphql_schema's `Context.relay_proof`)."""

import logging
from collections.abc import Sequence

from models.proofs import ProofMessage, ProofOutcome, Relayed
from server.mta.base import Mta

log = logging.getLogger(__name__)


class ProofSender:
    """Hands a proof's messages to the MTA adapter; whatever goes wrong, each message gets
    an outcome, so that the proof is recorded (and audited) as not sent rather than lost."""

    def __init__(self, mta: Mta) -> None:
        self.mta = mta

    async def __call__(self, number: int, messages: Sequence[ProofMessage]) -> list[Relayed]:
        try:
            relayed = await self.mta.send_proofs(number, list(messages))
        except Exception:
            log.exception("proof %s: the MTA adapter failed", number)
            relayed = []
        if len(relayed) != len(messages):
            return [Relayed(ProofOutcome.NOT_SENT, "unexpected error") for _ in messages]
        return relayed
