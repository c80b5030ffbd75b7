"""A delivery's proofs and a profile's preview, as the API shows them (docs/proofs.md)."""

from datetime import datetime

import strawberry

from models import proofs as m_proofs

strawberry.enum(m_proofs.ProofOutcome, description="What the MTA did with one proof message.")
# Delivery.proofs lists the newest this many (graphql_schema/cost.py bounds the list).
MAX_PROOFS_LISTED = 50


@strawberry.type(description="One recipient of a proof and what the MTA did with its message.")
class ProofRecipient:
    address: str
    profile_id: strawberry.ID | None = strawberry.field(
        description="The profile the proof was rendered as; null: a sample of the audience."
    )
    outcome: m_proofs.ProofOutcome
    detail: str | None = strawberry.field(
        description="Why it was refused or not sent, in plain words (never the MTA's text)."
    )


@strawberry.type(description="A proof: the delivery's message mailed to reviewers. Never counts.")
class Proof:
    id: strawberry.ID = strawberry.field(description="The proof's own id (a cache's key).")
    number: int = strawberry.field(description="n in the subject's `[Proof #n]`, per delivery.")
    recipients: list[ProofRecipient]
    sent_at: datetime
    sent_by: str | None = strawberry.field(description="The operator who sent it.")
    accepted: int = strawberry.field(description="Messages the MTA accepted.")

    @classmethod
    def of(cls, proof: m_proofs.Proof) -> "Proof":
        return cls(
            id=strawberry.ID(str(proof.id)),
            number=proof.number,
            recipients=[
                ProofRecipient(
                    address=r["address"],
                    profile_id=strawberry.ID(str(r["profileId"])) if r.get("profileId") else None,
                    outcome=m_proofs.ProofOutcome(r["outcome"]),
                    detail=r.get("detail"),
                )
                for r in proof.recipients
            ],
            sent_at=proof.sent_at,
            sent_by=proof.sent_by,
            accepted=proof.accepted,
        )


@strawberry.type(description="One profile's copy of a delivery, as the MTA path composes it.")
class DeliveryPreview:
    subject: str | None = strawberry.field(description="null for SMS and push.")
    html: str | None = strawberry.field(
        description="With its tracked links and open pixel (the profile's own once prepared:"
        " loading it in a browser records an open). null for SMS and push."
    )
    text: str

    @classmethod
    def of(cls, preview: m_proofs.Preview) -> "DeliveryPreview":
        return cls(subject=preview.subject, html=preview.html, text=preview.text)
