"""Conversation engine: pure functions from (session state, input) to (reply, new state).

Nothing here imports Flask, Redis or SQLAlchemy, so a flow can be tested with plain calls
and reused by any channel (Africa's Talking USSD, another aggregator, SMS)."""
