"""The command line through click's runner (and the launcher through a real process)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hub.cli.main import cli
from hub.config import load_config
from hub.identity import derive_keyid
from hub.store import new_operation, open_oplog

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCHUB_CONFIG", raising=False)
    return tmp_path


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("synchub: error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("start", "keygen", "id", "ops"):
        assert f"  {command}" in result.output


def test_launcher_runs_from_the_checkout() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "synchub"), "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "keygen" in done.stdout


def test_keygen_then_id_json_on_embedded_defaults(in_tmp: Path) -> None:
    created = run("keygen")
    assert created.exit_code == 0
    assert (in_tmp / "synchub-data" / "identity" / "ed25519.key").stat().st_mode & 0o777 == 0o600

    shown = run("id", "--json")
    assert shown.exit_code == 0
    details = json.loads(shown.output)
    assert set(details) == {
        "instance_id", "keyid", "fingerprint", "ed25519pub", "curve_public_key", "endpoint",
        "heartbeat_interval", "handshake_timeout", "max_frame_bytes",
    }
    assert (details["heartbeat_interval"], details["handshake_timeout"],
            details["max_frame_bytes"]) == (15.0, 10.0, 16 * 1024 * 1024)
    raw = base64.b64decode(details["ed25519pub"] + "=")
    assert len(raw) == 32
    assert details["keyid"] == derive_keyid(raw)
    assert details["keyid"] in created.output
    assert len(details["curve_public_key"]) == 40
    assert details["endpoint"] == "tcp://127.0.0.1:7470"


def test_id_text_is_a_known_hosts_entry_that_loads(in_tmp: Path) -> None:
    run("keygen")
    snippet = run("id").output
    (in_tmp / "client.toml").write_text(f'instance = "web1"\n\n{snippet}\n')
    config = load_config(in_tmp / "client.toml")
    [host] = config.known_hosts
    details = json.loads(run("id", "--json").output)
    assert host.keyid == details["keyid"]
    assert (host.heartbeat_interval, host.handshake_timeout, host.max_frame_bytes) == (
        details["heartbeat_interval"], details["handshake_timeout"], details["max_frame_bytes"])
    # A hub says how several hubs share its identity, in comments.
    assert f"copy {in_tmp / 'synchub-data' / 'identity'}/ to each hub's data_dir" in snippet


def test_an_agent_keeps_to_the_hub_limits_its_known_hosts_entry_gives() -> None:
    from hub.agent import AgentSettings, within_hub_limits  # noqa: PLC0415
    from hub.config import KnownHost  # noqa: PLC0415

    own = AgentSettings().session_settings(once=True, timeout=5.0)
    key = "ed25519." + "A" * 43
    plain = KnownHost("hub-1", "tcp://h:1", key, "x" * 40)
    assert within_hub_limits(own, plain) == own
    strict = KnownHost("hub-1", "tcp://h:1", key, "x" * 40, heartbeat_interval=2.0,
                       handshake_timeout=3.0, max_frame_bytes=65536)
    kept = within_hub_limits(own, strict)
    assert (kept.heartbeat_interval, kept.handshake_timeout, kept.max_frame_bytes) == (
        2.0, 3.0, 65536)
    lax = KnownHost("hub-1", "tcp://h:1", key, "x" * 40, heartbeat_interval=60.0,
                    handshake_timeout=60.0, max_frame_bytes=2**30)
    assert within_hub_limits(own, lax) == own  # never slower or larger than its own


def test_keygen_refuses_to_overwrite_without_force(in_tmp: Path) -> None:
    first = json.loads((run("keygen"), run("id", "--json"))[1].output)["keyid"]
    assert_one_line_error(run("keygen"), "--force")
    assert json.loads(run("id", "--json").output)["keyid"] == first
    assert run("keygen", "--force").exit_code == 0
    assert json.loads(run("id", "--json").output)["keyid"] != first


def test_id_without_identity_says_to_run_keygen(in_tmp: Path) -> None:
    assert_one_line_error(run("id"), "synchub keygen")


def test_bad_config_names_file_and_key(in_tmp: Path) -> None:
    (in_tmp / "bad.toml").write_text('instance = "x"\n[hub]\nheartbeat_interval = "fast"\n')
    assert_one_line_error(run("--config", "bad.toml", "id"), "bad.toml", "hub.heartbeat_interval")


def test_missing_config_file_is_one_line(in_tmp: Path) -> None:
    assert_one_line_error(run("--config", "nope.toml", "keygen"), "nope.toml")


def test_config_from_environment(in_tmp: Path) -> None:
    (in_tmp / "node.toml").write_text('instance = "from-env"\ndata_dir = "d"\n')
    env = {"SYNCHUB_CONFIG": str(in_tmp / "node.toml")}
    assert run("keygen", env=env).exit_code == 0
    details = json.loads(run("id", "--json", env=env).output)
    assert details["instance_id"] == "from-env"
    assert details["endpoint"] is None  # a client-only node has no [hub]
    assert (in_tmp / "d" / "identity").is_dir()


def test_local_synchub_toml_is_used_without_flags(in_tmp: Path) -> None:
    (in_tmp / "synchub.toml").write_text('instance = "local-file"\n')
    run("keygen")
    assert json.loads(run("id", "--json").output)["instance_id"] == "local-file"


def test_ops_lists_newest_first_with_filters(in_tmp: Path) -> None:
    (in_tmp / "synchub.toml").write_text(
        'instance = "web1"\n[[repos]]\nid = "nas"\nguid = "g-nas"\nuri = "x"\n'
    )
    config = load_config(in_tmp / "synchub.toml")
    with open_oplog(config) as oplog:
        oplog.add_local([
            new_operation(config, display_message="first", plan_id="nightly", repo_id="nas"),
            new_operation(config, display_message="second"),
        ])
    listed = json.loads(run("ops", "--json").output)
    assert [op["display_message"] for op in listed] == ["second", "first"]
    assert listed[1]["repo_guid"] == "g-nas"
    assert listed[1]["status"] == "STATUS_INPROGRESS"
    assert isinstance(listed[1]["unix_time_start_ms"], int)

    only_plan = json.loads(run("ops", "--json", "--plan", "nightly").output)
    assert [op["display_message"] for op in only_plan] == ["first"]
    assert json.loads(run("ops", "--json", "--limit", "1").output)[0]["display_message"] == "second"
    table = run("ops").output
    assert "second" in table and "inprogress" in table


def test_ops_on_a_node_without_an_oplog_is_empty(in_tmp: Path) -> None:
    assert json.loads(run("ops", "--json").output) == []
    assert run("ops").output.strip() == "no operations"


def test_ops_rejects_a_bad_limit(in_tmp: Path) -> None:
    result = run("ops", "--limit", "0")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_ops_limit_help_states_the_limit_it_enforces(in_tmp: Path) -> None:
    from hub.admin import MAX_OPS_LIMIT  # noqa: PLC0415

    assert f"1<=x<={MAX_OPS_LIMIT}" in " ".join(run("ops", "--help").output.split())
    assert run("ops", "--json", "--limit", str(MAX_OPS_LIMIT)).exit_code == 0
    too_many = run("ops", "--limit", str(MAX_OPS_LIMIT + 1))
    assert too_many.exit_code == 2
    assert f"1<=x<={MAX_OPS_LIMIT}" in too_many.output


@pytest.mark.parametrize(("journal", "expected"), [(True, "<4>synchub.test: careful"),
                                                   (False, "WARNING synchub.test: careful")])
def test_log_lines_carry_journald_priority_only_under_journald(
    tmp_path: Path, journal: bool, expected: str
) -> None:
    log_file = tmp_path / "stderr.log"
    with log_file.open("w") as stderr:
        st = log_file.stat()
        env = {"PATH": "/usr/bin:/bin"}
        if journal:
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        subprocess.run(
            [sys.executable, "-c",
             "import logging; from hub.cli.main import setup_logging; setup_logging(0); "
             "logging.getLogger('synchub.test').warning('careful')"],
            stderr=stderr, env=env, check=True, timeout=60, cwd=ROOT,
        )
    line = log_file.read_text().strip()
    assert line.endswith(expected)
    assert line.startswith("<4>") == journal


def test_commands_that_never_touch_postgresql_do_not_load_its_driver() -> None:
    """`synchub run` wraps every job: the CLI loads psycopg only when a store needs it."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    probe = (
        "import sys, hub.cli.main, hub.store\n"
        "assert 'psycopg' not in sys.modules, 'loaded at start'\n"
        "hub.store.PostgresOplogStore\n"
        "assert 'psycopg' in sys.modules, 'not loaded on use'\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_every_command_is_listed_with_the_module_that_defines_it() -> None:
    from hub.cli.main import COMMAND_MODULES  # noqa: PLC0415

    context = cli.make_context("synchub", ["--help"], resilient_parsing=True)
    names = cli.list_commands(context)
    assert sorted(names) == sorted(COMMAND_MODULES)
    for name in names:
        command = cli.get_command(context, name)
        assert command is not None and command.callback is not None
        assert command.callback.__module__ == f"hub.cli.{COMMAND_MODULES[name]}"


def test_a_command_loads_its_own_module_and_not_the_hub_or_the_benchmarks() -> None:
    probe = (
        "import sys\n"
        "from hub.cli import main\n"
        "sys.argv = ['synchub', 'status', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('hub.server', 'hub.bench', 'hub.web', 'actors', 'hub.cli.demo_cmds')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('hub', 'actors')"
        " and m.startswith(heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    assert "Show the running hub's identity" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"
