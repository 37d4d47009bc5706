"""Channel secrets encrypted at rest (Fernet: AES-128-CBC with HMAC-SHA256, keys rotatable)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretUnreadable(Exception):
    """A stored secret that none of the keys opens (the key was changed without keeping the old one)."""


def new_key() -> str:
    """A fresh key for ``QL_ALERTS_SECRET_KEY`` (urlsafe base64 of 32 random bytes)."""
    return Fernet.generate_key().decode()


class SecretBox:
    """Encrypts with the first key and decrypts with any, so keys rotate as ``new,old``."""

    def __init__(self, key: str | bytes) -> None:
        text = key.decode() if isinstance(key, bytes) else key
        keys = [part.strip() for part in text.split(",") if part.strip()]
        if not keys:
            raise ValueError("a secret key is needed: QL_ALERTS_SECRET_KEY (make one with notify.new_key())")
        # Fernet raises ValueError on a key that is not 32 urlsafe-base64 bytes: fail at start-up, not at send.
        self._fernet = MultiFernet([Fernet(part) for part in keys])

    def encrypt(self, plaintext: str) -> str:
        """The token to store for a secret."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The secret a stored token holds."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as error:
            raise SecretUnreadable("a stored channel secret cannot be decrypted with the configured keys") from error
