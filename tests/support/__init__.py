"""What the tests share: servers and clients, databases, MTAs and sinks, the operator's steps."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
