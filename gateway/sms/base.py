"""The outcome of one send, whatever the provider."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol

SENT, REJECTED, RETRY = "sent", "rejected", "retry"


@dataclass(frozen=True)
class SendResult:
    outcome: str  # SENT: accepted by the provider; REJECTED: final, do not retry; RETRY: transient
    provider_message_id: Optional[str] = None
    status_code: Optional[int] = None
    reason: Optional[str] = None

    @property
    def retryable(self) -> bool:
        return self.outcome == RETRY


class Provider(Protocol):
    name: str

    def send(self, to: str, body: str) -> SendResult: ...
