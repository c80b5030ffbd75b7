"""The audit trail: who did what to deliveries and addresses, and when."""
