"""What a hub on a shared store (docs/cluster.md) may not have in its file."""

from __future__ import annotations

from hub.config._model import Config
from hub.errors import ConfigError
from hub.text import redacted_url


def cluster_clients_refusal(config: Config) -> ConfigError | None:
    """The error for ``[[authorized_clients]]`` in the file of a hub whose store is a
    PostgreSQL database, or None: such a hub reads its clients from the database, so no
    hub's stale file can admit a revoked key. Start and reload refuse it alike."""
    if config.store.url is None or not config.authorized_clients:
        return None
    return ConfigError(
        config.path or "<embedded defaults>", "authorized_clients",
        f"{len(config.authorized_clients)} client(s) here, but a hub on a PostgreSQL store "
        f"reads them from the database: run `synchub store migrate --clients-only --to "
        f"{redacted_url(config.store.url)}` to move them there, then delete them from this "
        "file",
    )
