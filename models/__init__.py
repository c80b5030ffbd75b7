"""The domain: tortoise models and the rules that change them. No HTTP, GraphQL or settings."""

# Every module that defines tortoise models, for the ORM config and the migrations.
MODEL_MODULES = [
    "models.operator",
    "models.profile",
    "models.addresses",
    "models.delivery",
    "models.sending_log",
    "models.feedback",
    "models.tracking",
    "models.audit",
]
