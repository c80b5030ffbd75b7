"""Quarantine and deny list, for administrators (the addresses are personal data, SPEC §1)."""
