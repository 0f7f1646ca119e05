"""The TOML configuration: the frozen model, loading it, and writing changes back.

One file serves a hub, a client, or a node that is both (docs/configuration.md
describes every key). Every problem is a ConfigError naming the file, the key
path and what was expected.
"""

from hub.config._cluster import cluster_clients_refusal
from hub.config._edit import (
    add_or_update_authorized_client,
    add_or_update_known_host,
    remove_authorized_client,
    set_keyid_verified,
)
from hub.config._load import (
    CONFIG_KEYS,
    example_path,
    load_config,
    load_config_or_defaults,
    postgresql_url_problem,
    resolve_config_path,
)
from hub.config._model import (
    ALERT_CONDITIONS,
    CONFIG_ENV_VAR,
    DEFAULT_BIND,
    DEFAULT_DATA_DIR,
    DEFAULT_ERROR_OUTPUT_BYTES,
    DEFAULT_WEB_BIND,
    MAX_ERROR_OUTPUT_BYTES,
    REMOTE_CONFIG_VERSION,
    AlertRule,
    AlertWhen,
    AuthorizedClient,
    Config,
    HubSettings,
    KnownHost,
    PlanConfig,
    RepoConfig,
    RetentionSettings,
    RunSettings,
    StoreSettings,
    WebSettings,
    default_config,
    is_loopback_host,
    split_host_port,
)

__all__ = [
    "ALERT_CONDITIONS",
    "CONFIG_ENV_VAR",
    "CONFIG_KEYS",
    "DEFAULT_BIND",
    "DEFAULT_DATA_DIR",
    "DEFAULT_ERROR_OUTPUT_BYTES",
    "DEFAULT_WEB_BIND",
    "MAX_ERROR_OUTPUT_BYTES",
    "REMOTE_CONFIG_VERSION",
    "AlertRule",
    "AlertWhen",
    "AuthorizedClient",
    "Config",
    "HubSettings",
    "KnownHost",
    "PlanConfig",
    "RepoConfig",
    "RetentionSettings",
    "RunSettings",
    "StoreSettings",
    "WebSettings",
    "add_or_update_authorized_client",
    "add_or_update_known_host",
    "cluster_clients_refusal",
    "default_config",
    "example_path",
    "is_loopback_host",
    "load_config",
    "load_config_or_defaults",
    "postgresql_url_problem",
    "remove_authorized_client",
    "resolve_config_path",
    "set_keyid_verified",
    "split_host_port",
]
