"""Intake: what a caller or texter sends, read into reports and answers (USSD, SMS, delivery reports).

`take` hands a provider's event to the module that reads it, so a webhook needs to know only
the neutral events, not the intake's modules."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Union

from gateway.channels.base import DeliveryReport, InboundSms
from gateway.intake import delivery, inbox

if TYPE_CHECKING:
    from gateway.runtime import Runtime

READERS: dict[type, Callable[[Runtime, object], str]] = {
    InboundSms: inbox.receive,
    DeliveryReport: delivery.apply,
}


def take(runtime: Runtime, event: Union[InboundSms, DeliveryReport]) -> str:
    """The intake's one-line answer to the event, for the provider's webhook to return."""
    return READERS[type(event)](runtime, event)
