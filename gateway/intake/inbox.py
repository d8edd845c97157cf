"""Incoming SMS: stored (encrypted) with its handling job in the outbox, then answered by a
worker. The webhook only writes, so it answers the aggregator in milliseconds; a retried
callback hits the unique provider id and changes nothing."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from gateway.channels.base import InboundSms
from gateway.messaging import outbox
from gateway.store.models import InboundMessage

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

NEW, DUPLICATE, IGNORED = "new", "duplicate", "ignored"


def receive(runtime: Runtime, sms: InboundSms) -> str:
    """Store the message once; raises SQLAlchemyError when the database is down, so the caller
    answers non-200 and the aggregator retries rather than the message being lost."""
    if sms.sender is None:
        log.info("sms %s from a sender that is not a phone number: not answered", sms.provider_id)
        return IGNORED
    vault = runtime.vault
    try:
        with runtime.db.session() as session:
            inbound = InboundMessage(channel=sms.channel, provider_id=sms.provider_id,
                                     sender_enc=vault.encrypt(sms.sender), sender_index=vault.blind_index(sms.sender),
                                     text_enc=vault.encrypt(sms.text),
                                     kind=None if sms.kind == "text" else sms.kind)
            session.add(inbound)
            session.flush()
            outbox.add(session, "handle_sms", inbound.id)
            inbound_id = inbound.id
    except IntegrityError:
        return DUPLICATE
    outbox.enqueue(runtime, "handle_sms", inbound_id, stamped=True)
    return NEW
