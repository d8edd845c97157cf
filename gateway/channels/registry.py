"""Every channel the gateway serves, listed once: the webhook blueprints the app registers, the
senders SMS_CHANNEL can name, and the chat app's sender."""
from __future__ import annotations

from typing import Callable

from gateway.channels import africastalking, sms8x8, whatsapp
from gateway.channels.base import Provider
from gateway.channels.sink import SinkProvider
from gateway.settings import Settings

WEBHOOKS = (africastalking.bp, sms8x8.bp, whatsapp.bp)
WEBHOOK_NAMES = frozenset(bp.name for bp in WEBHOOKS)

# Each made from the settings and the public numbers (which only the local sink shows whole).
SENDERS: dict[str, Callable[[Settings, frozenset[str]], Provider]] = {
    "africastalking": lambda s, _public: africastalking.AfricasTalkingProvider.from_settings(s),
    "8x8": lambda s, _public: sms8x8.Sms8x8Provider.from_settings(s),
    "sink": lambda s, public: SinkProvider(s.var_dir / "sms-sink.log", public=public),
}


def sender(settings: Settings, public: frozenset[str] = frozenset()) -> Provider:
    """The configured sender; the local sink when SMS_CHANNEL names none (development)."""
    return SENDERS.get(settings.sms_channel, SENDERS["sink"])(settings, public)


def chat_sender(settings: Settings, public: frozenset[str] = frozenset()):
    """WhatsApp through the Graph API when configured; else the local sink (development)."""
    if settings.whatsapp_enabled:
        return whatsapp.WhatsAppProvider.from_settings(settings)
    return SinkProvider(settings.var_dir / "sms-sink.log", channel="whatsapp", public=public)
