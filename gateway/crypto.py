"""Personal data at rest: authenticated encryption and a blind index.

Fields that identify a reporter (phone number, free text) are stored encrypted with Fernet
(AES-128-CBC + HMAC-SHA256). `DATA_KEY` holds one or more comma-separated Fernet keys: the
first encrypts, all decrypt, so a key can be rotated without downtime. Lookups by phone use
an HMAC of the number (a blind index), so the database never needs the number in clear; its
HMAC key is derived from each DATA_KEY key, so during a rotation a lookup tries them all."""
from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Optional

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.errors import DataKeyError


class Vault:
    def __init__(self, data_key: str):
        keys = [k.strip() for k in (data_key or "").split(",") if k.strip()]
        if not keys:
            raise DataKeyError("DATA_KEY is empty")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError) as exc:
            raise DataKeyError(f"DATA_KEY must be Fernet keys (32 url-safe base64 bytes each): {exc}") from None
        self._index_keys = [HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                                 info=b"tppo-gateway blind index v1").derive(k.encode()) for k in keys]

    def encrypt(self, text: Optional[str]) -> Optional[str]:
        return None if text is None else self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: Optional[str]) -> Optional[str]:
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise DataKeyError("a stored value cannot be decrypted with DATA_KEY") from None

    def rotate(self, token: Optional[str]) -> Optional[str]:
        """Re-encrypt with the first key (used by the key rotation command)."""
        return None if token is None else self._fernet.rotate(token.encode()).decode()

    def blind_index(self, value: Optional[str]) -> Optional[str]:
        """The index to store, under the first key."""
        if value is None:
            return None
        return hmac.new(self._index_keys[0], value.encode(), hashlib.sha256).hexdigest()

    def blind_indexes(self, value: str) -> list[str]:
        """The index under every key, first key first: look up with `IN` so rows written before a
        new key was put in front are still found until they are re-indexed."""
        return [hmac.new(k, value.encode(), hashlib.sha256).hexdigest() for k in self._index_keys]


def new_key() -> str:
    return Fernet.generate_key().decode()


def development_key(path: Path) -> str:
    """A key kept under var/ so a local run needs no set-up; created once, readable by the owner only."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_key())
    return path.read_text().strip()
