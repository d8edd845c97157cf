"""Errors raised by jobs so that RQ retries them."""


class TransientSendError(Exception):
    """The provider may accept this SMS later (network error, timeout, 5xx): retry."""
