"""Start-up refuses damaged stores and every start-up failure is one line on stderr.

`synchub start` as a real process on a data_dir whose SQLite files were emptied,
overwritten or had a page corrupted, or that the hub's user cannot write: exit
status 1, one line naming the file and the damage, no traceback (unless -vv). A
SIGHUP with a broken config file is one line at ERROR and the hub keeps running
on its old config.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.config import load_config
from hub.identity import load_identity, load_or_create_identity
from hub.pb import synchub_pb2 as pb
from hub.store import SqliteOplogStore
from synchub_testing import (
    CLIENT,
    LAUNCHER,
    HubProcess,
    RawClient,
    free_tcp_port,
    hub_config_text,
    wait_until,
)

pytestmark = pytest.mark.integration

PAGE = 4096


def start_hub(
    config: Path, *extra: str, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`synchub start` expected to fail at once (a timeout here means it started)."""
    return subprocess.run(
        [*prefix, sys.executable, str(LAUNCHER), "--config", str(config), *extra, "start"],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )


def one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    [line] = lines
    assert line.startswith("synchub: error: "), line
    assert "Traceback" not in result.stderr and "see the log" not in line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


@pytest.fixture
def node(tmp_path: Path) -> Path:
    """A hub config whose data_dir has an identity and a filled oplog, not running."""
    path = tmp_path / "hub.toml"
    path.write_text(hub_config_text(extra='\n[web]\nbind = ""\n').replace(
        "heartbeat_interval = 10",
        f'heartbeat_interval = 10\nbind = "tcp://127.0.0.1:{free_tcp_port()}"',
    ))
    data_dir = load_config(path).data_dir
    load_or_create_identity(data_dir)
    store = SqliteOplogStore(data_dir / "oplog.sqlite")
    try:
        store.add_local([
            pb.Operation(instance_id="hub1", plan_id="nightly", repo_guid="guid-nas",
                         display_message="x" * 3000, unix_time_start_ms=1 + i)
            for i in range(400)
        ])
    finally:
        store.close()
    return path


def test_a_zero_length_oplog_is_refused(node: Path) -> None:
    oplog = load_config(node).data_dir / "oplog.sqlite"
    oplog.write_bytes(b"")
    os.utime(oplog, (0, 0))  # an old empty file, not one being made
    one_error_line(start_hub(node), str(oplog), "is damaged", "empty (0 bytes)", "backup")
    assert oplog.stat().st_size == 0  # nothing was created in its place


def test_a_zero_length_peer_store_is_refused(node: Path) -> None:
    peers = load_config(node).data_dir / "peers.sqlite"
    peers.write_bytes(b"")
    os.utime(peers, (0, 0))  # an old empty file, not one being made
    one_error_line(start_hub(node), str(peers), "empty (0 bytes)")


def test_an_overwritten_header_is_refused(node: Path) -> None:
    oplog = load_config(node).data_dir / "oplog.sqlite"
    with oplog.open("r+b") as file:
        file.write(b"this is not sqlite at all")
    one_error_line(start_hub(node), str(oplog), "header is not an SQLite database")


def test_a_corrupt_page_is_refused_and_traceback_only_at_debug(node: Path) -> None:
    oplog = load_config(node).data_dir / "oplog.sqlite"
    pages = oplog.stat().st_size // PAGE
    assert pages > 100
    with oplog.open("r+b") as file:
        for page in (pages // 3, pages // 2):
            file.seek(page * PAGE)
            file.write(bytes([0xA5]) * PAGE)
    line = one_error_line(start_hub(node), str(oplog), "is damaged", "from a backup")
    assert "quick_check" in line or "malformed" in line, line
    debug = start_hub(node, "-vv")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "is damaged" in debug.stderr


def test_an_intact_store_still_starts(node: Path) -> None:
    hub = HubProcess(node)
    try:
        hub.wait_for_output("listening on")
    finally:
        assert hub.stop() == 0


def test_a_data_dir_the_hub_cannot_write_is_one_line(node: Path) -> None:
    data_dir = load_config(node).data_dir
    (data_dir / "oplog.sqlite").unlink()
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        # Root writes anywhere: run it without the capabilities that let it, on a
        # directory owned by someone else.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        prefix = (setpriv, "--bounding-set", "-dac_override,-dac_read_search")
        os.chown(data_dir, 65534, -1)
    data_dir.chmod(0o555)
    try:
        one_error_line(
            start_hub(node, prefix=prefix), str(data_dir / "oplog.sqlite"), "permission denied",
            "must be able to read and write",
        )
    finally:
        data_dir.chmod(0o700)


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory\n")
    config = tmp_path / "hub.toml"
    config.write_text(hub_config_text().replace(
        "heartbeat_interval = 10", 'heartbeat_interval = 10\nbind = "tcp://127.0.0.1:0"',
    ))
    one_error_line(start_hub(config), "data")


@pytest.fixture
def running(node: Path) -> Iterator[HubProcess]:
    hub = HubProcess(node, "-v")
    try:
        hub.wait_for_output("listening on")
        yield hub
    finally:
        hub.kill()


def test_sighup_with_a_broken_file_is_one_line_and_keeps_the_old_config(
    running: HubProcess,
) -> None:
    good = running.config_path.read_text()
    config = load_config(running.config_path)
    running.config_path.write_text(good + "\n[hub\nbroken = \n")
    running.signal(signal.SIGHUP)
    running.wait_for_output("reload refused")
    wait_until(lambda: running.process.poll() is None, timeout=1)

    node = load_identity(config.data_dir)
    assert config.hub is not None
    client = RawClient(config.hub.bind, node.curve.public)
    try:
        client.handshake(node.signing.keyid, identity=CLIENT, instance_id="web1")
        client.recv_action("send_config")
    finally:
        client.close()

    running.config_path.write_text(good)
    assert running.stop() == 0
    refused = [line for line in running.stderr.splitlines() if "reload refused" in line]
    assert len(refused) == 1, running.stderr
    assert " ERROR " in refused[0] or " WARNING " in refused[0], refused[0]
    assert str(running.config_path) in refused[0] and "line" in refused[0]
    assert "fix the file" in refused[0]
    assert "Traceback" not in running.stderr
    assert not [line for line in running.stderr.splitlines() if line.startswith((" ", "\t"))
                and "invalid TOML" in line]
