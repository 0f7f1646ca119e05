"""Loading, validating and writing back the TOML configuration."""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

import pytest

from hub import config as config_module
from hub.config import (
    AuthorizedClient,
    Config,
    HubSettings,
    KnownHost,
    PlanConfig,
    RepoConfig,
    StoreSettings,
    add_or_update_authorized_client,
    default_config,
    load_config,
    load_config_or_defaults,
    remove_authorized_client,
    resolve_config_path,
    set_keyid_verified,
)
from hub.errors import ConfigError
from hub.scopes import PermissionType, parse_permissions

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"
DOC = ROOT / "docs" / "configuration.md"

KEYID_A = "ed25519.O2qrBjRkXlA0N1FHzFskMqfsSoQ9-3ltd9d8kDphi2E"
KEYID_B = "ed25519.39rwWXzU1UBZd-RMRvmJ7UaJbv3MYCFLFbBWg4S08bY"
KEYID_C = "ed25519.Isi0fr67UjoRMsEuYBBAiHVJo1n5bZM2em2PUffpU54"
KEYID_D = "ed25519.g7B2kKHUpMz3S-yf8R4RFNdpolFTAr-xV8X6Q-br9Zw"
CURVE_KEY = "yA&Xa]7K]h-csKL9TGUj2zYFg!OX?SqtUc$Ov8GS"


def write(directory: Path, text: str, name: str = "synchub.toml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def known_host(**overrides: str) -> str:
    fields = {
        "instance_id": '"hub-1"',
        "endpoint": '"tcp://hub.example.org:7470"',
        "keyid": f'"{KEYID_C}"',
        "curve_public_key": f'"{CURVE_KEY}"',
    }
    fields.update(overrides)
    return "[[known_hosts]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items())


# --- the shipped example and the documentation ----------------------------------------------


def test_example_config_loads_into_the_expected_objects() -> None:
    config = load_config(EXAMPLE)

    assert config.path == EXAMPLE
    assert config.instance == "site-a"
    assert config.data_dir == ROOT / "synchub-data"
    assert config.hub == HubSettings(
        bind="tcp://0.0.0.0:7470",
        advertise="tcp://hub.example.org:7470",
        curve=True,
        heartbeat_interval=15.0,
        handshake_timeout=10.0,
        max_pending_handshakes=1000,
        max_frame_bytes=16777216,
    )
    assert config.repos == (
        RepoConfig("nas", "08d73c12989e4af9a90c79509109f36a", "sftp:backup@nas:/srv/restic"),
        RepoConfig(
            "offsite", "0adb5b44a9930487830d3adc7fcb7f95", "s3:s3.example.org/site-a-backups"
        ),
    )
    assert config.plans == (
        PlanConfig("nightly", "nas", ("/etc", "/home", "/srv"), ("*.cache", "/home/*/Downloads")),
        PlanConfig("secret", "offsite", ("/var/lib/secrets",), ()),
    )
    assert config.authorized_clients == (
        AuthorizedClient(
            "web1",
            KEYID_A,
            True,
            parse_permissions([{"type": "read_config", "scopes": ["*", "!plan:secret"]}]),
        ),
        AuthorizedClient(
            "db1",
            KEYID_B,
            False,
            parse_permissions([{"type": "read_config", "scopes": ["repo:nas", "plan:nightly"]}]),
        ),
    )
    assert config.known_hosts == (
        KnownHost(
            "hub-1",
            "tcp://hub.example.org:7470",
            KEYID_C,
            CURVE_KEY,
            parse_permissions(
                [
                    {"type": "read_operations", "scopes": ["*"]},
                    {"type": "read_config", "scopes": ["repo:nas"]},
                    {"type": "read_logs", "scopes": ["repo:nas"]},
                ]
            ),
        ),
    )
    assert config.run.error_output_bytes == 8192
    assert config.authorized_client(KEYID_A) is config.authorized_clients[0]
    assert config.authorized_client(KEYID_D) is None
    assert config.repo("offsite") is config.repos[1]
    assert config.repo("missing") is None
    assert config.plan("nightly") is config.plans[0]
    assert config.plan("missing") is None
    assert config.known_host("hub-1") is config.known_hosts[0]


def _toml_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```toml\n(.*?)^```", markdown, flags=re.DOTALL | re.MULTILINE)


def test_documentation_example_loads(tmp_path: Path) -> None:
    blocks = _toml_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 1, "docs/configuration.md should hold exactly one ```toml example"
    config = load_config(write(tmp_path, blocks[0]))
    assert config.instance == "web1"
    assert config.hub is None
    assert [h.instance_id for h in config.known_hosts] == ["hub-1"]
    permissions = config.known_hosts[0].permissions
    assert permissions.can_read_operations("plan:nightly")
    assert not permissions.can_read_operations("plan:payroll")


def test_documentation_lists_every_key() -> None:
    text = DOC.read_text(encoding="utf-8")
    keys = [key for table in config_module.CONFIG_KEYS.values() for key in table]
    for key in keys:
        assert f"`{key}`" in text or f"[{key}]" in text, f"{key} is not documented"


# --- loading rules --------------------------------------------------------------------------


def test_minimal_file_has_no_hub_and_defaults_elsewhere(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'instance = "n1"\n'))
    assert config == Config(
        path=tmp_path / "synchub.toml",
        instance="n1",
        data_dir=tmp_path / "synchub-data",
        hub=None,
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://synchub@db.example.org:5432/synchub",
        "postgres:///synchub?host=/var/run/postgresql",
        "postgresql://db1:5432,db2:5432/synchub?target_session_attrs=read-write",
        "postgresql://synchub@[2001:db8::1]/synchub?sslmode=verify-full",
    ],
)
def test_store_url_forms(tmp_path: Path, url: str) -> None:
    config = load_config(write(tmp_path, f'instance = "n1"\n[hub]\n[store]\nurl = "{url}"\n'))
    assert config.store == StoreSettings(url=url)
    assert config.store.postgresql


def test_the_store_is_sqlite_unless_a_url_is_given(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, 'instance = "n1"\n[hub]\n')).store == StoreSettings()
    bare = load_config(write(tmp_path, 'instance = "n1"\n[hub]\n[store]\n'))
    assert bare.store.url is None and not bare.store.postgresql


def test_bare_hub_table_gets_every_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'instance = "n1"\n[hub]\n'))
    assert config.hub == HubSettings()
    assert HubSettings().bind == "tcp://127.0.0.1:7470"


def test_durations_accept_whole_and_fractional_seconds(tmp_path: Path) -> None:
    text = 'instance = "n1"\n[hub]\nheartbeat_interval = 2\nhandshake_timeout = 0.25\n'
    hub = load_config(write(tmp_path, text)).hub
    assert hub is not None
    assert hub.heartbeat_interval == 2.0
    assert isinstance(hub.heartbeat_interval, float)
    assert hub.handshake_timeout == 0.25


@pytest.mark.parametrize(
    "bind", ["tcp://*:7470", "tcp://127.0.0.1:0", "tcp://127.0.0.1:*", "tcp://[::1]:7470"]
)
def test_bind_forms(tmp_path: Path, bind: str) -> None:
    hub = load_config(write(tmp_path, f'instance = "n1"\n[hub]\nbind = "{bind}"\n')).hub
    assert hub is not None
    assert hub.bind == bind


def test_relative_data_dir_is_resolved_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    path = write(tmp_path / "etc", 'instance = "n1"\ndata_dir = "state/synchub"\n')

    assert load_config(path).data_dir == tmp_path / "etc" / "state" / "synchub"
    assert load_config(Path("../etc/synchub.toml")).data_dir == tmp_path / "etc/state/synchub"


def test_absolute_and_home_data_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "abs"
    assert load_config(write(tmp_path, f'instance = "n1"\ndata_dir = "{target}"\n')).data_dir == (
        target
    )
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config(write(tmp_path, 'instance = "n1"\ndata_dir = "~/sh"\n'))
    assert config.data_dir == tmp_path / "home" / "sh"


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.path == str(path)
    assert caught.value.key == ""
    assert "no such file" in str(caught.value)
    assert str(path) in str(caught.value)


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'instance = "n1"\n\n[hub\nbind = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: invalid TOML")
    assert "line 3" in message


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.toml"
    path.write_bytes(b'instance = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


BAD_INPUTS = [
    # (id, file text, key path, problem fragment)
    (
        "store url of another database",
        'instance = "n"\n[hub]\n[store]\nurl = "mysql://db/synchub"\n',
        "store.url",
        "'mysql://db/synchub' is not a postgresql:// URL",
    ),
    (
        "store url with a bad port",
        'instance = "n"\n[hub]\n[store]\nurl = "postgresql://s:pw@db:99999/synchub"\n',
        "store.url",
        "port '99999' in 'postgresql://s:***@db:99999/synchub' is not a port number",
    ),
    (
        "store url with a parameter libpq does not know",
        'instance = "n"\n[hub]\n[store]\nurl = "postgresql://db/synchub?sslmod=require"\n',
        "store.url",
        'invalid URI query parameter: "sslmod"',
    ),
    (
        "store url empty",
        'instance = "n"\n[hub]\n[store]\nurl = ""\n',
        "store.url",
        "expected a postgresql:// URL",
    ),
    (
        "store unknown key",
        'instance = "n"\n[hub]\n[store]\nuri = "postgresql://db/synchub"\n',
        "store.uri",
        "did you mean 'url'?",
    ),
    (
        "store without a hub",
        'instance = "n"\n[store]\nurl = "postgresql://db/synchub"\n',
        "store",
        "only a hub keeps a store",
    ),
    ("instance missing", 'data_dir = "d"\n', "instance", "missing"),
    ("instance wrong type", "instance = 7\n", "instance", "expected an id"),
    ("instance empty", 'instance = ""\n', "instance", "got ''"),
    ("instance bad chars", 'instance = "a b"\n', "instance", "got 'a b'"),
    ("data_dir wrong type", 'instance = "n"\ndata_dir = 1\n', "data_dir", "got 1"),
    (
        "unknown top-level key",
        'instance = "n"\nauthorised_clients = []\n',
        "authorised_clients",
        "did you mean 'authorized_clients'?",
    ),
    ("hub not a table", 'instance = "n"\nhub = true\n', "hub", "expected a table"),
    (
        "interval wrong type",
        'instance = "n"\n[hub]\nheartbeat_interval = "fast"\n',
        "hub.heartbeat_interval",
        "expected a number of seconds > 0, got 'fast'",
    ),
    (
        "negative interval",
        'instance = "n"\n[hub]\nheartbeat_interval = -1\n',
        "hub.heartbeat_interval",
        "expected a number of seconds > 0, got -1",
    ),
    (
        "zero timeout",
        'instance = "n"\n[hub]\nhandshake_timeout = 0\n',
        "hub.handshake_timeout",
        "> 0, got 0",
    ),
    (
        "infinite timeout",
        'instance = "n"\n[hub]\nhandshake_timeout = inf\n',
        "hub.handshake_timeout",
        "got inf",
    ),
    (
        "boolean as duration",
        'instance = "n"\n[hub]\nheartbeat_interval = true\n',
        "hub.heartbeat_interval",
        "got true",
    ),
    (
        "curve not boolean",
        'instance = "n"\n[hub]\ncurve = "yes"\n',
        "hub.curve",
        "expected true or false, got 'yes'",
    ),
    (
        "fractional count",
        'instance = "n"\n[hub]\nmax_frame_bytes = 1.5\n',
        "hub.max_frame_bytes",
        "expected a whole number > 0, got 1.5",
    ),
    (
        "negative count",
        'instance = "n"\n[hub]\nmax_pending_handshakes = -5\n',
        "hub.max_pending_handshakes",
        "got -5",
    ),
    (
        "unknown hub key with suggestion",
        'instance = "n"\n[hub]\nheartbeat_intervall = 3\n',
        "hub.heartbeat_intervall",
        "unknown key 'heartbeat_intervall'; did you mean 'heartbeat_interval'?",
    ),
    (
        "bad bind",
        'instance = "n"\n[hub]\nbind = "localhost:7470"\n',
        "hub.bind",
        "expected tcp://<address>:<port>, got 'localhost:7470'",
    ),
    (
        "bind port out of range",
        'instance = "n"\n[hub]\nbind = "tcp://*:70000"\n',
        "hub.bind",
        "port must be",
    ),
    (
        "repos as a table",
        'instance = "n"\n[repos]\nid = "a"\n',
        "repos",
        "expected an array of tables ([[repos]]), got a table",
    ),
    (
        "repo missing guid",
        'instance = "n"\n[[repos]]\nid = "a"\nuri = "u"\n',
        "repos[0].guid",
        "missing",
    ),
    (
        "repo unknown key",
        'instance = "n"\n[[repos]]\nid = "a"\nguid = "g"\nuri = "u"\ngiud = "x"\n',
        "repos[0].giud",
        "did you mean 'guid'?",
    ),
    (
        "duplicate repo id",
        'instance = "n"\n[[repos]]\nid = "nas"\nguid = "g1"\nuri = "u"\n'
        '[[repos]]\nid = "nas"\nguid = "g2"\nuri = "u"\n',
        "repos[1].id",
        "duplicate repo id 'nas' (already used at repos[0].id)",
    ),
    (
        "duplicate repo guid",
        'instance = "n"\n[[repos]]\nid = "a"\nguid = "g1"\nuri = "u"\n'
        '[[repos]]\nid = "b"\nguid = "g1"\nuri = "u"\n',
        "repos[1].guid",
        "duplicate repo guid 'g1'",
    ),
    (
        "empty guid",
        'instance = "n"\n[[repos]]\nid = "a"\nguid = ""\nuri = "u"\n',
        "repos[0].guid",
        "non-empty",
    ),
    (
        "plan refers to missing repo",
        'instance = "n"\n[[repos]]\nid = "nas"\nguid = "g"\nuri = "u"\n'
        '[[plans]]\nid = "p"\nrepo = "nope"\n',
        "plans[0].repo",
        "refers to repo 'nope', which is not in [[repos]] (repo ids: 'nas')",
    ),
    (
        "plan paths not an array",
        'instance = "n"\n[[repos]]\nid = "r"\nguid = "g"\nuri = "u"\n'
        '[[plans]]\nid = "p"\nrepo = "r"\npaths = "/etc"\n',
        "plans[0].paths",
        "expected an array of strings",
    ),
    (
        "plan excludes element not a string",
        'instance = "n"\n[[repos]]\nid = "r"\nguid = "g"\nuri = "u"\n'
        '[[plans]]\nid = "p"\nrepo = "r"\nexcludes = ["a", 2]\n',
        "plans[0].excludes[1]",
        "expected a string, got 2",
    ),
    (
        "bad keyid in third client",
        'instance = "n"\n'
        f'[[authorized_clients]]\ninstance_id = "a"\nkeyid = "{KEYID_A}"\n'
        f'[[authorized_clients]]\ninstance_id = "b"\nkeyid = "{KEYID_B}"\n'
        '[[authorized_clients]]\ninstance_id = "c"\nkeyid = "ed25519.Ab3"\n',
        "authorized_clients[2].keyid",
        "expected a key id 'ed25519.' + 43 base64url characters",
    ),
    (
        "keyid with non-canonical base64",
        f'instance = "n"\n[[authorized_clients]]\ninstance_id = "a"\nkeyid = "{KEYID_A[:-1]}F"\n',
        "authorized_clients[0].keyid",
        "got 'ed25519.",
    ),
    (
        "keyid of another key type",
        f'instance = "n"\n[[authorized_clients]]\ninstance_id = "a"\nkeyid = "rsa.{KEYID_A[8:]}"\n',
        "authorized_clients[0].keyid",
        "expected a key id",
    ),
    (
        "duplicate client keyid",
        'instance = "n"\n'
        f'[[authorized_clients]]\ninstance_id = "a"\nkeyid = "{KEYID_A}"\n'
        f'[[authorized_clients]]\ninstance_id = "b"\nkeyid = "{KEYID_A}"\n',
        "authorized_clients[1].keyid",
        "duplicate authorized client keyid",
    ),
    (
        "keyid_verified not boolean",
        'instance = "n"\n'
        f'[[authorized_clients]]\ninstance_id = "a"\nkeyid = "{KEYID_A}"\n'
        'keyid_verified = "true"\n',
        "authorized_clients[0].keyid_verified",
        "expected true or false, got 'true'",
    ),
    (
        "unknown permission type",
        'instance = "n"\n'
        f'[[authorized_clients]]\ninstance_id = "a"\nkeyid = "{KEYID_A}"\n'
        'permissions = [ { type = "read_all", scopes = ["*"] } ]\n',
        "authorized_clients[0].permissions[0].type",
        "unknown permission type 'read_all'",
    ),
    (
        "unknown scope string",
        'instance = "n"\n'
        + known_host(
            permissions='[ { type = "read_operations", scopes = ["*"] },'
            ' { type = "read_config", scopes = ["host:x"] } ]'
        ),
        "known_hosts[0].permissions[1].scopes[0]",
        "unknown scope 'host:x'",
    ),
    (
        "exclusion of everything",
        'instance = "n"\n' + known_host(permissions='[{ type = "read_config", scopes = ["!*"] }]'),
        "known_hosts[0].permissions[0].scopes[0]",
        "unknown scope '!*'",
    ),
    (
        "permissions not an array",
        'instance = "n"\n' + known_host(permissions='"read_config"'),
        "known_hosts[0].permissions",
        "expected an array",
    ),
    (
        "bad Z85 character",
        'instance = "n"\n' + known_host(curve_public_key=f'"~{CURVE_KEY[1:]}"'),
        "known_hosts[0].curve_public_key",
        "expected the hub's 40-character Z85 CURVE public key",
    ),
    (
        "Z85 too short",
        'instance = "n"\n' + known_host(curve_public_key=f'"{CURVE_KEY[:35]}"'),
        "known_hosts[0].curve_public_key",
        "40-character Z85",
    ),
    (
        "Z85 value overflowing 32 bits",
        'instance = "n"\n' + known_host(curve_public_key='"' + "#" * 40 + '"'),
        "known_hosts[0].curve_public_key",
        "40-character Z85",
    ),
    (
        "endpoint without scheme",
        'instance = "n"\n' + known_host(endpoint='"hub.example.org:7470"'),
        "known_hosts[0].endpoint",
        "expected tcp://<host>:<port>, got 'hub.example.org:7470'",
    ),
    (
        "endpoint port zero",
        'instance = "n"\n' + known_host(endpoint='"tcp://hub:0"'),
        "known_hosts[0].endpoint",
        "port must be 1-65535",
    ),
    (
        "endpoint wildcard host",
        'instance = "n"\n' + known_host(endpoint='"tcp://*:7470"'),
        "known_hosts[0].endpoint",
        "not *",
    ),
    (
        "known host bad keyid",
        'instance = "n"\n' + known_host(keyid='"ed25519.Qx9"'),
        "known_hosts[0].keyid",
        "got 'ed25519.Qx9'",
    ),
    (
        "known host missing curve key",
        'instance = "n"\n[[known_hosts]]\ninstance_id = "h"\nendpoint = "tcp://h:1"\n'
        f'keyid = "{KEYID_C}"\n',
        "known_hosts[0].curve_public_key",
        "missing",
    ),
    (
        "duplicate known host",
        'instance = "n"\n' + known_host() + known_host(),
        "known_hosts[1].instance_id",
        "duplicate known host instance_id 'hub-1'",
    ),
    ("run not a table", 'instance = "n"\nrun = 3\n', "run", "expected a table"),
    (
        "negative error output",
        'instance = "n"\n[run]\nerror_output_bytes = -1\n',
        "run.error_output_bytes",
        "expected a number of bytes from 0 (off) to 1048576, got -1",
    ),
    (
        "error output above the limit",
        'instance = "n"\n[run]\nerror_output_bytes = 2000000\n',
        "run.error_output_bytes",
        "got 2000000",
    ),
    (
        "error output as text",
        'instance = "n"\n[run]\nerror_output_bytes = "8k"\n',
        "run.error_output_bytes",
        "got '8k'",
    ),
    (
        "unknown run key",
        'instance = "n"\n[run]\nerror_output = 10\n',
        "run.error_output",
        "did you mean 'error_output_bytes'?",
    ),
    (
        "misspelled read_logs",
        'instance = "n"\n' + known_host(permissions='[ { type = "read_log", scopes = ["*"] } ]'),
        "known_hosts[0].permissions[0].type",
        "did you mean 'read_logs'?",
    ),
]


def test_run_settings_default_and_off(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, 'instance = "n"\n')).run.error_output_bytes == 8192
    off = write(tmp_path, 'instance = "n"\n[run]\nerror_output_bytes = 0\n', "off.toml")
    assert load_config(off).run.error_output_bytes == 0
    assert default_config(tmp_path).run.error_output_bytes == 8192


def test_resumed_sync_is_on_unless_the_hub_or_a_known_host_turns_it_off(
    tmp_path: Path,
) -> None:
    from hub.agent import AgentSettings, within_hub_limits  # noqa: PLC0415

    host = (f'[[known_hosts]]\ninstance_id = "h"\nendpoint = "tcp://h:1"\n'
            f'keyid = "{KEYID_A}"\ncurve_public_key = "{CURVE_KEY}"\n')
    on = load_config(write(tmp_path, f'instance = "n"\n[hub]\n{host}'))
    assert on.hub is not None and on.hub.resync and on.known_hosts[0].resync
    off = load_config(write(
        tmp_path, f'instance = "n"\n[hub]\nresync = false\n{host}resync = false\n', "off.toml"))
    assert off.hub is not None and not off.hub.resync and not off.known_hosts[0].resync
    session = AgentSettings().session_settings(once=True, timeout=5.0)
    assert session.resync
    assert within_hub_limits(session, on.known_hosts[0]).resync
    assert not within_hub_limits(session, off.known_hosts[0]).resync
    bad = write(tmp_path, f'instance = "n"\n{host}resync = "no"\n', "bad.toml")
    with pytest.raises(ConfigError, match=r"known_hosts\[0\]\.resync.*expected true or false"):
        load_config(bad)


def test_read_logs_takes_the_same_scope_grammar(tmp_path: Path) -> None:
    text = 'instance = "n"\n' + known_host(
        permissions='[ { type = "read_logs", scopes = ["repo:nas", "!plan:payroll"] } ]'
    )
    host = load_config(write(tmp_path, text)).known_hosts[0]
    assert host.permissions.can_read_logs("repo:nas")
    assert not host.permissions.can_read_logs("plan:payroll")
    assert not host.permissions.can_read_operations("repo:nas")
    bad = 'instance = "n"\n' + known_host(
        permissions='[ { type = "read_logs", scopes = ["host:x"] } ]'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, bad, "bad.toml"))
    assert caught.value.key == "known_hosts[0].permissions[0].scopes[0]"


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [pytest.param(text, key, fragment, id=name) for name, text, key, fragment in BAD_INPUTS],
)
def test_bad_input_is_reported_with_key_path(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert error.path == str(path)
    assert error.key == key
    assert fragment in error.problem
    assert str(error) == f"{path}: {key}: {error.problem}"


# --- defaults and file selection ------------------------------------------------------------


def test_default_config(tmp_path: Path) -> None:
    config = default_config(tmp_path)
    assert config == Config(
        path=None,
        instance=socket.gethostname(),
        data_dir=tmp_path / "synchub-data",
        hub=HubSettings(),
    )
    assert config.hub is not None
    assert config.hub.bind == "tcp://127.0.0.1:7470"
    assert load_config_or_defaults(None, tmp_path) == config


def test_default_config_uses_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_config().data_dir == tmp_path / "synchub-data"


@pytest.mark.parametrize(
    ("cli", "env", "expected"),
    [
        ("/etc/a.toml", {"SYNCHUB_CONFIG": "/etc/b.toml"}, Path("/etc/a.toml")),
        (None, {"SYNCHUB_CONFIG": "/etc/b.toml"}, Path("/etc/b.toml")),
        (None, {"SYNCHUB_CONFIG": ""}, None),
        (None, {}, None),
        ("rel.toml", {}, Path("rel.toml")),
    ],
)
def test_resolve_config_path(cli: str | None, env: dict[str, str], expected: Path | None) -> None:
    assert resolve_config_path(cli, env) == expected


# --- what a client is shown -----------------------------------------------------------------

FILTER_CONFIG = """\
instance = "hub"
[[repos]]
id = "a"
guid = "ga"
uri = "ua"
[[repos]]
id = "b"
guid = "gb"
uri = "ub"
[[repos]]
id = "c"
guid = "gc"
uri = "uc"
[[plans]]
id = "p1"
repo = "a"
paths = ["/x"]
excludes = ["*.tmp"]
[[plans]]
id = "p2"
repo = "b"
[[plans]]
id = "p3"
repo = "b"
"""


@pytest.mark.parametrize(
    ("permissions", "repos", "plans"),
    [
        ([{"type": "read_config", "scopes": ["*"]}], ["a", "b", "c"], ["p1", "p2", "p3"]),
        (
            [{"type": "read_config", "scopes": ["*", "!repo:b", "!plan:p2"]}],
            ["a", "c"],
            ["p1", "p3"],
        ),
        (
            [{"type": "read_write_config", "scopes": ["repo:c", "plan:p3", "!plan:p3"]}],
            ["c"],
            [],
        ),
        (
            [
                {"type": "read_config", "scopes": ["repo:a"]},
                {"type": "read_write_config", "scopes": ["plan:p2"]},
            ],
            ["a"],
            ["p2"],
        ),
        ([{"type": "read_operations", "scopes": ["*"]}], [], []),
        ([], [], []),
    ],
)
def test_remote_config_is_filtered_by_scopes(
    tmp_path: Path, permissions: list[dict[str, object]], repos: list[str], plans: list[str]
) -> None:
    config = load_config(write(tmp_path, FILTER_CONFIG))
    granted = parse_permissions(permissions)

    remote = config.remote_config_for(granted)

    assert [r.id for r in remote.repos] == repos
    assert [p.id for p in remote.plans] == plans
    assert config.resource_ids_for(granted) == (tuple(repos), tuple(plans))
    assert remote.version == 1
    assert 0 <= remote.modno < 2**31


def test_remote_config_content_and_modno(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FILTER_CONFIG))
    everything = parse_permissions([{"type": "read_config", "scopes": ["*"]}])
    fewer = parse_permissions([{"type": "read_config", "scopes": ["*", "!plan:p3"]}])

    first = config.remote_config_for(everything)
    second = config.remote_config_for(everything)

    assert first is not second
    assert first == second
    assert first.modno == second.modno
    assert config.remote_config_for(fewer).modno != first.modno
    assert (first.repos[0].id, first.repos[0].guid, first.repos[0].uri) == ("a", "ga", "ua")
    assert list(first.plans[0].paths) == ["/x"]
    assert list(first.plans[0].excludes) == ["*.tmp"]
    assert first.plans[0].repo == "a"
    first.repos[0].id = "changed"
    assert config.remote_config_for(everything).repos[0].id == "a"


# --- writing back ---------------------------------------------------------------------------


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    path = tmp_path / "synchub.toml"
    path.write_bytes(EXAMPLE.read_bytes())
    return path


def _read_only(type_: str, *scopes: str) -> AuthorizedClient:
    return AuthorizedClient(
        "web2", KEYID_D, True, parse_permissions([{"type": type_, "scopes": list(scopes)}])
    )


WEB2_BLOCK = f"""[[authorized_clients]]
instance_id = "web2"
keyid = "{KEYID_D}"
keyid_verified = true
permissions = [{{type = "read_config", scopes = ["repo:nas"]}}]

"""

DB1_BLOCK = f"""[[authorized_clients]]
instance_id = "db1"
keyid = "{KEYID_B}"
keyid_verified = false               # seen, not yet confirmed: cannot connect yet
permissions = [
  {{ type = "read_config", scopes = ["repo:nas", "plan:nightly"] }},
]

"""

HOSTS_COMMENT = "# --- Hubs this node syncs"


def test_adding_a_client_only_inserts_its_entry(example_copy: Path) -> None:
    before = example_copy.read_text()

    config = add_or_update_authorized_client(example_copy, _read_only("read_config", "repo:nas"))

    after = example_copy.read_text()
    # The comment introducing [[known_hosts]] stays above [[known_hosts]].
    assert after == before.replace(HOSTS_COMMENT, WEB2_BLOCK + HOSTS_COMMENT)
    assert config == load_config(example_copy)
    assert config.authorized_client(KEYID_D) == _read_only("read_config", "repo:nas")
    assert [c.instance_id for c in config.authorized_clients] == ["web1", "db1", "web2"]
    assert config.known_hosts == load_config(EXAMPLE).known_hosts


def test_adding_then_removing_restores_the_file_byte_for_byte(example_copy: Path) -> None:
    before = example_copy.read_bytes()
    add_or_update_authorized_client(example_copy, _read_only("read_operations", "*"))
    remove_authorized_client(example_copy, KEYID_D)
    assert example_copy.read_bytes() == before


def test_updating_a_client_changes_only_its_values(example_copy: Path) -> None:
    before = example_copy.read_text()
    updated = AuthorizedClient(
        "web1-new", KEYID_A, False, parse_permissions([{"type": "read_config", "scopes": ["*"]}])
    )

    config = add_or_update_authorized_client(example_copy, updated)

    assert config.authorized_client(KEYID_A) == updated
    assert len(config.authorized_clients) == 2
    expected = (
        before.replace('instance_id = "web1"', 'instance_id = "web1-new"')
        .replace("keyid_verified = true", "keyid_verified = false")
        .replace(
            'permissions = [ { type = "read_config", scopes = ["*", "!plan:secret"] } ]',
            'permissions = [{type = "read_config", scopes = ["*"]}]',
        )
    )
    assert example_copy.read_text() == expected


def test_updating_with_the_same_values_leaves_the_text_alone(example_copy: Path) -> None:
    before = example_copy.read_bytes()
    current = load_config(example_copy).authorized_clients[1]
    add_or_update_authorized_client(example_copy, current)
    assert example_copy.read_bytes() == before


def test_set_keyid_verified_keeps_the_inline_comment(example_copy: Path) -> None:
    before = example_copy.read_text()

    config = set_keyid_verified(example_copy, KEYID_B, True)

    client = config.authorized_client(KEYID_B)
    assert client is not None
    assert client.keyid_verified is True
    assert example_copy.read_text() == before.replace(
        "keyid_verified = false               # seen",
        "keyid_verified = true               # seen",
    )


def test_removing_a_client_only_deletes_its_entry(example_copy: Path) -> None:
    before = example_copy.read_text()

    config = remove_authorized_client(example_copy, KEYID_B)

    assert example_copy.read_text() == before.replace(DB1_BLOCK, "")
    assert [c.keyid for c in config.authorized_clients] == [KEYID_A]
    assert config == load_config(example_copy)


def test_removing_every_client_keeps_the_comments_around_them(example_copy: Path) -> None:
    before = example_copy.read_text()
    web1_block = before[before.index("[[authorized_clients]]") : before.index(DB1_BLOCK)]

    remove_authorized_client(example_copy, KEYID_A)
    assert example_copy.read_text() == before.replace(web1_block, "")
    config = remove_authorized_client(example_copy, KEYID_B)

    assert example_copy.read_text() == before.replace(web1_block, "").replace(DB1_BLOCK, "")
    assert config.authorized_clients == ()


TRAILING = f"""\
instance = "n"

[[authorized_clients]]
instance_id = "a"
keyid = "{KEYID_A}"
# inside a

# above b
[[authorized_clients]]
instance_id = "b"
keyid = "{KEYID_B}"

# after b
"""


@pytest.mark.parametrize(
    ("keyids", "expected"),
    [
        pytest.param(
            [KEYID_A],
            f"""\
instance = "n"

# above b
[[authorized_clients]]
instance_id = "b"
keyid = "{KEYID_B}"

# after b
""",
            id="first of two",
        ),
        pytest.param(
            [KEYID_B],
            f"""\
instance = "n"

[[authorized_clients]]
instance_id = "a"
keyid = "{KEYID_A}"
# inside a

# above b
# after b
""",
            id="last of two",
        ),
        pytest.param(
            [KEYID_A, KEYID_B],
            'instance = "n"\n\n# above b\n# after b\n',
            id="both",
        ),
        pytest.param(
            [KEYID_B, KEYID_A],
            'instance = "n"\n\n# above b\n# after b\n',
            id="both, last first",
        ),
    ],
)
def test_comments_after_a_removed_entry_stay(
    tmp_path: Path, keyids: list[str], expected: str
) -> None:
    path = write(tmp_path, TRAILING)
    for keyid in keyids:
        remove_authorized_client(path, keyid)
    assert path.read_text() == expected


def test_comments_after_the_only_entry_move_above_the_next_table(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'instance = "n"\n\n[[authorized_clients]]\ninstance_id = "a"\nkeyid = "{KEYID_A}"\n'
        "\n# the hub settings\n[hub]\ncurve = false\n",
    )
    config = remove_authorized_client(path, KEYID_A)
    assert path.read_text() == 'instance = "n"\n\n# the hub settings\n[hub]\ncurve = false\n'
    assert config.hub == HubSettings(curve=False)


def test_removing_the_last_client_drops_the_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '# head\ninstance = "n"\n\n'
        f'[[authorized_clients]]\ninstance_id = "a"\nkeyid = "{KEYID_A}"\n',
    )
    config = remove_authorized_client(path, KEYID_A)
    assert config.authorized_clients == ()
    assert path.read_text().startswith('# head\ninstance = "n"\n')
    assert "authorized_clients" not in path.read_text()


def test_inline_array_of_clients_is_extended_in_place(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'instance = "n"  # me\n'
        f'authorized_clients = [{{ instance_id = "a", keyid = "{KEYID_A}" }}]\n',
    )
    config = add_or_update_authorized_client(path, _read_only("read_operations", "*"))
    assert [c.keyid for c in config.authorized_clients] == [KEYID_A, KEYID_D]
    assert 'instance = "n"  # me\n' in path.read_text()
    config = set_keyid_verified(path, KEYID_A, True)
    client = config.authorized_client(KEYID_A)
    assert client is not None
    assert client.keyid_verified
    config = remove_authorized_client(path, KEYID_A)
    assert [c.keyid for c in config.authorized_clients] == [KEYID_D]


def test_file_mode_is_kept_and_the_file_is_replaced_by_rename(example_copy: Path) -> None:
    example_copy.chmod(0o640)
    inode_before = example_copy.stat().st_ino

    set_keyid_verified(example_copy, KEYID_B, True)

    status = example_copy.stat()
    assert stat.S_IMODE(status.st_mode) == 0o640
    assert status.st_ino != inode_before
    assert sorted(p.name for p in example_copy.parent.iterdir()) == ["synchub.toml"]


def test_symlinked_config_stays_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    real.write_bytes(EXAMPLE.read_bytes())
    link = tmp_path / "link.toml"
    link.symlink_to(real)

    set_keyid_verified(link, KEYID_B, True)

    assert link.is_symlink()
    client = load_config(real).authorized_client(KEYID_B)
    assert client is not None
    assert client.keyid_verified


def _assert_untouched(path: Path, before: bytes) -> None:
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_invalid_change_is_refused_and_the_file_is_untouched(example_copy: Path) -> None:
    before = example_copy.read_bytes()
    bad = AuthorizedClient("web9", "ed25519.not-a-key", True)

    with pytest.raises(ConfigError) as caught:
        add_or_update_authorized_client(example_copy, bad)

    assert caught.value.key == "authorized_clients[2].keyid"
    assert "refused" in caught.value.problem
    _assert_untouched(example_copy, before)


def test_failed_rename_leaves_the_original_and_no_temp_file(
    example_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = example_copy.read_bytes()

    def failing_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(ConfigError, match="cannot write: No space left on device"):
        set_keyid_verified(example_copy, KEYID_B, True)

    _assert_untouched(example_copy, before)


@pytest.mark.parametrize("operation", ["remove", "verify"])
def test_unknown_keyid_is_an_error(example_copy: Path, operation: str) -> None:
    before = example_copy.read_bytes()
    with pytest.raises(ConfigError) as caught:
        if operation == "remove":
            remove_authorized_client(example_copy, KEYID_D)
        else:
            set_keyid_verified(example_copy, KEYID_D, True)
    assert caught.value.key == "authorized_clients"
    assert KEYID_D in caught.value.problem
    _assert_untouched(example_copy, before)


def test_write_back_to_missing_file_without_create_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        remove_authorized_client(tmp_path / "absent.toml", KEYID_A)
    assert list(tmp_path.iterdir()) == []


def test_write_back_refuses_a_file_that_is_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, 'instance = "n"\n[hub\n')
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="invalid TOML"):
        add_or_update_authorized_client(path, _read_only("read_config", "*"))
    _assert_untouched(path, before)


def test_authorize_without_a_file_creates_one_from_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "synchub.toml"
    client = _read_only("read_config", "*")

    config = add_or_update_authorized_client(path, client, cwd=tmp_path)

    defaults = default_config(tmp_path)
    assert config.instance == defaults.instance
    assert config.data_dir == defaults.data_dir
    assert config.hub == defaults.hub
    assert config.authorized_clients == (client,)
    assert config == load_config(path)
    text = path.read_text()
    assert text.startswith("# synchub configuration")
    assert 'data_dir = "synchub-data"' in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_created_file_keeps_the_defaults_data_dir_when_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "work").mkdir()
    path = tmp_path / "etc" / "synchub.toml"

    config = add_or_update_authorized_client(
        path, _read_only("read_config", "*"), cwd=tmp_path / "work"
    )

    assert config.data_dir == tmp_path / "work" / "synchub-data"
    second = add_or_update_authorized_client(
        path,
        AuthorizedClient("web3", KEYID_C, False, parse_permissions([])),
        cwd=tmp_path / "work",
    )
    assert [c.instance_id for c in second.authorized_clients] == ["web2", "web3"]
    assert second.authorized_clients[1].permissions.entries == ()
    assert not second.authorized_clients[1].permissions.allows(PermissionType.READ_CONFIG, "repo:x")
