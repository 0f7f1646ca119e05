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
    """A peer failed authentication or authorization; the session ends with ERROR_AUTH.

    ``reason`` names the kind of refusal in one word, for counting refusals by kind
    (``unknown_key``, ``unverified``, ``instance_mismatch``, ``bad_signature``...).
    """

    def __init__(self, message: str, *, reason: str = "auth") -> None:
        super().__init__(message)
        self.reason = reason


class SessionDisplaced(SynchubError):
    """A newer session of the same key has authenticated: the older one's requests are
    refused where they are applied, and it ends with DISCONNECTED."""


class StoreError(SynchubError):
    """The oplog or peer-state store failed or refused a change."""


class StoreUnavailable(StoreError):
    """The store's database cannot be reached (down, restarting, connection lost).

    Nothing of the call that raised it is acknowledged; once the database is back
    the store reconnects by itself, so the same call can be tried again.
    """


class ActorError(SynchubError):
    """An actor did not answer in time or is no longer running."""


class ClientError(SynchubError):
    """The client agent could not reach, authenticate to, or sync with a hub."""


class PermissionsError(SynchubError, ValueError):
    """A permissions list is malformed.

    ``location`` is the path inside the list, e.g. ``[1].scopes[0]`` (empty when
    the list itself is wrong), so callers can report the full key path.
    """

    def __init__(self, location: str, problem: str) -> None:
        self.location = location
        self.problem = problem
        super().__init__(f"permissions{location}: {problem}")


class LogUnavailable(SynchubError):
    """A job's log cannot be served: it is not one this node keeps, is gone, or unreadable."""


class LogFetchError(SynchubError):
    """A log could not be fetched from a client: not connected, refused, or no answer."""


class FrontError(SynchubError):
    """The hub's ROUTER socket could not be set up (bad bind address, port in use...)."""


class ServiceError(SynchubError):
    """A service thread of the hub did not start (it names the service and why)."""


class WebError(ServiceError):
    """The hub's HTTP side could not listen where it was told to.

    ``in_use`` is True when the port is taken (a second hub on the machine).
    """

    def __init__(self, message: str, *, in_use: bool = False) -> None:
        super().__init__(message)
        self.in_use = in_use


class HubRefused(ClientError):
    """The hub is not the pinned one, or it refused this client: an operator must act."""


class HubUnavailable(ClientError):
    """The hub could not be reached, or the connection to it was lost."""


class AdminError(SynchubError):
    """The running hub answered an admin request with an error, or refused the caller."""


class AdminUnavailable(SynchubError):
    """No hub answers on the admin socket.

    ``listening`` is True when something accepts connections on the socket but gave
    no answer in time (a hub that is busy or stuck), False when no hub runs there.
    """

    def __init__(self, message: str, *, listening: bool = False) -> None:
        super().__init__(message)
        self.listening = listening


class AdminSocketError(SynchubError):
    """The hub cannot serve its admin socket (another hub owns it, or bind failed)."""


class RequestError(SynchubError):
    """An admin request is malformed; its message is the answer's error line."""


class NotConfirmed(SynchubError):
    """The operator did not confirm a change."""


class BenchError(SynchubError):
    """A benchmark scenario could not be set up or did not finish as expected."""
