"""sendProof: the delivery's message mailed to reviewers through the configured MTA."""

import strawberry
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.pagination import parse_id
from graphql_schema.permissions import needs, operator_of
from graphql_schema.proofs.types import Proof
from models import proofs
from models.actions import DeliveryAction, role_of
from models.audit import Actor
from models.delivery import utcnow
from models.errors import BadInput

# A list of ids longer than this is refused before any id is parsed (the cap itself is 20).
MAX_GIVEN = 1000


@strawberry.input(description="Who receives a proof: at most 20 addresses and profiles in all.")
class SendProofInput:
    addresses: list[str] | None = strawberry.field(
        default=None, description="Rendered as a sample of the audience (its first recipient)."
    )
    profile_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Each rendered as itself, and sent to its email address."
    )


@strawberry.type
class ProofMutations:
    @strawberry.mutation(
        description="Send a proof of a READY email delivery, its subject prefixed `[Proof #n]`."
        " A proof never counts (no KPI, log, quarantine or history) and its links are"
        " untracked. PREPARE_DELIVERIES or above.",
        extensions=needs(role_of(DeliveryAction.SEND_PROOF)),
    )
    async def send_proof(
        self, info: Info[Context, None], delivery_id: strawberry.ID, input: SendProofInput
    ) -> Proof:
        by = Actor.of(operator_of(info))
        given = len(input.addresses or []) + len(input.profile_ids or [])
        if given > MAX_GIVEN:
            raise BadInput(f"a proof goes to at most {proofs.MAX_PROOF_RECIPIENTS} recipients")
        delivery = parse_id(delivery_id, "delivery")
        profile_ids = [parse_id(i, "profile") for i in input.profile_ids or []]
        proof, messages = await proofs.start_proof(
            delivery, input.addresses or [], profile_ids, by, info.context.tracker, utcnow()
        )
        relayed = await info.context.relay_proof(proof.number, messages)
        done = await proofs.finish_proof(proof, relayed, by, utcnow())
        await info.context.changed(delivery)
        return Proof.of(done)
