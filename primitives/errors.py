"""Error hierarchy shared by every package.

``PeerError`` subclasses mean the other side broke the rules (log, count, carry
on); ``UsageError`` means our own caller did; ``InvariantViolation`` means our
own state is inconsistent and the process must stop loudly.
"""


class MedchainError(Exception):
    """Base of every error medchain raises on purpose."""


class PeerError(MedchainError):
    """Input from outside (a peer, a client, a file) is not acceptable."""


class DecodeError(PeerError):
    """Bytes are not the canonical encoding of the expected value."""


class InvalidSignature(PeerError):
    """A signature does not verify for the claimed key and payload."""


class UsageError(MedchainError):
    """Our own caller passed something it should not have."""


class InvariantViolation(MedchainError):
    """Internal state broke a rule that must always hold: stop."""
