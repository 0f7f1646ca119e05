"""The synchub exception tree: one root, one subclass per layer.

Every message says what went wrong and, where there is one, what to do next.
Lower layers are re-raised ``from`` their cause so tracebacks in debug logs keep
the whole story, while the CLI prints only ``str(error)``.
"""

from __future__ import annotations


class SynchubError(Exception):
    """Root of every error synchub raises on purpose."""


class ConfigError(SynchubError):
    """A configuration file (or a value in it) is missing or invalid."""

    def __init__(self, path: object, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {problem}")


class IdentityError(SynchubError):
    """A key file is missing, malformed, unsafe, or a key id does not match its key."""


class ProtocolError(SynchubError):
    """A peer broke the wire protocol; the session ends with ERROR_PROTOCOL."""


class AuthError(SynchubError):
    """A peer failed authentication or authorization; the session ends with ERROR_AUTH."""


class StoreError(SynchubError):
    """The oplog or peer-state store failed or refused a change."""


class ActorError(SynchubError):
    """An actor did not answer in time or is no longer running."""


class ClientError(SynchubError):
    """The client agent could not reach, authenticate to, or sync with a hub."""
