"""Mail that comes back: the inbound SMTP listener (`listener.py`) and what each message it takes
says (`reports.py`). See docs/bounces.md."""
