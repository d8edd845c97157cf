"""Key rotation: after a new key is put first in DATA_KEY (`new,old`), every personal field is
re-encrypted with it and every blind index rebuilt under it; then the old key can go.

Until this has run, rows written under the old key still decrypt (MultiFernet) and are still
found (lookups try the index under every key), so rotation needs no downtime. It works in
batches, each its own transaction, and running it twice is harmless."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from gateway.cases.retention import PURGED
from gateway.store.models import Contact, InboundMessage, Message, Report, Responder, Volunteer

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

BATCH = 500

# model -> (encrypted fields, (blind index field, the encrypted field it indexes) or None)
FIELDS = {
    Report: (("reporter_phone_enc", "details_enc"), ("reporter_index", "reporter_phone_enc")),
    Message: (("to_enc", "body_enc"), ("to_index", "to_enc")),
    InboundMessage: (("sender_enc", "text_enc"), ("sender_index", "sender_enc")),
    Contact: (("phone_enc",), ("phone_index", "phone_enc")),
    Responder: (("phone_enc",), ("phone_index", "phone_enc")),
    Volunteer: (("phone_enc",), ("phone_index", "phone_enc")),
}


def rotate(runtime: Runtime) -> dict[str, int]:
    vault, counts = runtime.vault, {}
    for model, (encrypted, index) in FIELDS.items():
        done, last_id = 0, 0
        while True:
            with runtime.db.session() as session:
                rows = list(session.scalars(select(model).where(model.id > last_id).order_by(model.id).limit(BATCH)))
                for row in rows:
                    for name in encrypted:
                        value = getattr(row, name)
                        if value and value != PURGED:
                            setattr(row, name, vault.rotate(value))
                    if index and getattr(row, index[1]) not in (None, PURGED):
                        setattr(row, index[0], vault.blind_index(vault.decrypt(getattr(row, index[1]))))
            if not rows:
                break
            done, last_id = done + len(rows), rows[-1].id
        counts[model.__tablename__] = done
    log.info("key rotation: %s", counts)
    return counts
