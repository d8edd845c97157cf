"""Outgoing SMS providers. Each returns a SendResult from one small closed set of outcomes,
so the worker decides retry or record without knowing any provider's status words."""
