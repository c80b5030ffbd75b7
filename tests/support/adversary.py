"""The documents of issue 11's findings 2 and 3, as the attacker sent them: the tests that
prove them refused and bench/adversary_documents.py that times the refusal read them here."""

# Finding 2: 30 aliases x 7 levels of profile { history { profile ... } } (memory, /health).
NESTED_HISTORY = (
    "{ "
    + " ".join(
        f'a{i}: profile(id: "1") {{ history {{ profile {{ history {{ profile {{ history {{'
        f" profile {{ id }} }} }} }} }} }} }}"
        for i in range(30)
    )
    + " }"
)
# Finding 2: 30 aliases of 500 deliveries, each with 500 audit events (14.8 s of CPU).
PAGES_OF_TRAILS = (
    "{ "
    + " ".join(
        f"a{i}: deliveries(first: 500) {{ edges {{ node {{ exclusions {{ reason count }}"
        f" auditTrail(first: 500) {{ totalCount }} }} }} }}"
        for i in range(30)
    )
    + " }"
)
# Finding 3: one field repeated 480 times, 4,802 tokens (quadratic validation).
REPEATED = "{" + " deliveries{edges{node{id}}}" * 480 + "}"
