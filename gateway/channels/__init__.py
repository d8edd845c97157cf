"""Channels: one module per provider (`africastalking.py`, `sms8x8.py`), each holding its
callbacks' parsing, its webhook blueprint and its sender; `base.py` holds what they share and
`registry.py` lists them. A new aggregator is one module and one line in the registry."""
