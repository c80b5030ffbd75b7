"""The domain: tortoise models and the rules that change them. No HTTP, GraphQL or settings.

"SPEC §N" in docstrings and comments (here and in the other packages) is section N of
docs/spec.md; where each rule lives is in docs/architecture.md.
"""

# Every module that defines tortoise models, for the ORM config and the migrations.
MODEL_MODULES = [
    "models.operator",
    "models.profile",
    "models.address_status",
    "models.delivery",
    "models.sending_log",
    "models.feedback",
    "models.tracking",
    "models.audit",
    "models.proofs",
    "models.kpi_history",
]
