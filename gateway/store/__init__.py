"""The relational record: reports, the outbox, responders, messages and the audit trail."""
