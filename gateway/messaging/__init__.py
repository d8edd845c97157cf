"""Messaging: the outbox, the job registry and sending one SMS (claim, STOP check, budget, breaker)."""
