"""Who is knocking, on a real hub: `synchub pending` (a process), /api/pending and the
dashboard, while a flood of keys completes valid PROOFs the hub refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import zmq
from click.testing import CliRunner
from web_support import get, web_hub_config

from actors import MAX_PENDING_KEYS
from hub import protocol
from hub.admin import ask_hub
from hub.cli.main import cli as main_cli
from hub.identity import SigningIdentity
from synchub_testing import (
    CLIENT,
    HUB_INSTANCE,
    LAUNCHER,
    client_handshake,
    connected_client,
    running_hub,
    wait_until,
)

# A promise under load (the hub answers while the flood lasts): nothing beside it.
pytestmark = [pytest.mark.integration, pytest.mark.alone]

HOSTILE = '<script>alert("x")</script>'
FLOOD_KEYS = MAX_PENDING_KEYS + 40
FLOOD_THREADS = 4


def knocker(index: int) -> SigningIdentity:
    return SigningIdentity.from_seed(index.to_bytes(4, "big") * 8)


def knock(hub: Any, indices: range, errors: list[str]) -> None:
    """Each key: HELLO, the hub's CHALLENGE, a valid PROOF, and the hub's refusal."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        for index in indices:
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            public, secret = zmq.curve_keypair()
            sock.curve_serverkey = hub.identity.curve.public
            sock.curve_publickey, sock.curve_secretkey = public, secret
            sock.connect(hub.endpoint)
            try:
                name = HOSTILE if index == FLOOD_KEYS - 1 else f"k{index}"
                handshake = client_handshake(knocker(index), name, None, hub.identity.signing.keyid,
                                             HUB_INSTANCE)
                sock.send(handshake.hello_frame())
                if not sock.poll(10_000):
                    errors.append(f"no CHALLENGE for key {index}")
                    return
                challenge = protocol.decode_item(sock.recv())
                sock.send(handshake.proof_frame(challenge.handshake))
                if not sock.poll(10_000):
                    errors.append(f"no answer to the PROOF of key {index}")
                    return
                answer = protocol.decode_item(sock.recv())
                if answer.WhichOneof("action") != "error" or "is not authorized" not in (
                        answer.error.message):
                    errors.append(f"key {index}: {answer}")
                    return
            finally:
                sock.close(linger=0)
    finally:
        context.term()


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCHUB_CONFIG"}
    return subprocess.run([sys.executable, str(LAUNCHER), "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60, env=env, check=False)


def pending_json(config: Path) -> list[dict[str, Any]]:
    """`synchub pending --json`, in this process (the text form runs as a process)."""
    result = CliRunner().invoke(main_cli, ["--config", str(config), "pending", "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.output)
    return rows


def test_a_flood_of_knocking_keys_is_bounded_listed_and_authorized_away(tmp_path: Path) -> None:
    config = web_hub_config(tmp_path)
    assert config.path is not None
    with running_hub(config) as hub:
        errors: list[str] = []
        flood = range(FLOOD_KEYS - 1)
        threads = [threading.Thread(target=knock, args=(hub, flood[i::FLOOD_THREADS], errors),
                                    name=f"knocker-{i}") for i in range(FLOOD_THREADS)]
        for thread in threads:
            thread.start()
        try:
            # While the flood lasts: the admin socket answers and a known client gets in.
            slowest = 0.0
            while any(t.is_alive() for t in threads):
                started = time.monotonic()
                answer = ask_hub(config.data_dir, "pending", timeout=5)
                assert len(answer["pending"]) <= MAX_PENDING_KEYS
                started_client = time.monotonic()
                connected_client(hub).close()
                slowest = max(slowest, time.monotonic() - started,
                              time.monotonic() - started_client)
        finally:
            for thread in threads:
                thread.join(timeout=60)
        assert not errors, errors[:3]
        assert slowest < 2.0, slowest
        knock(hub, range(FLOOD_KEYS - 1, FLOOD_KEYS), errors)  # the last one, named badly
        assert not errors, errors
        wait_until(lambda: ask_hub(config.data_dir, "pending", timeout=5)["pending"][0][
            "keyid"] == knocker(FLOOD_KEYS - 1).keyid, timeout=10, what="the last knock")

        rows = pending_json(config.path)
        # Bounded: the keys heard from least recently were evicted; the known client,
        # which connected, is not there.
        assert len(rows) == MAX_PENDING_KEYS
        assert CLIENT.keyid not in {r["keyid"] for r in rows}
        last = rows[0]
        assert last["instance_id"] == HOSTILE
        assert last["source_address"] == "127.0.0.1"
        assert last["attempts"] == 1
        assert last["first_seen_ms"] == last["last_seen_ms"] > 0
        assert "is not authorized" in last["reason"]
        assert last["authorize_command"] == (
            f"synchub authorize {last['keyid']} --instance NAME")
        some = next(r for r in rows if r["instance_id"] != HOSTILE)
        assert some["authorize_command"] == (
            f"synchub authorize {some['keyid']} --instance {some['instance_id']}")
        assert some["fingerprint"].replace(" ", "") == some["keyid"].removeprefix("ed25519.")

        shown = CliRunner().invoke(main_cli, ["--config", str(config.path), "status"],
                                   catch_exceptions=False)
        assert shown.exit_code == 0, shown.output
        assert (f"  waiting   {MAX_PENDING_KEYS} keys refused after a valid PROOF: "
                "`synchub pending` lists them with the authorize line") in shown.output

        text = cli(config.path, "pending")
        assert text.returncode == 0, text.stderr
        assert f"{MAX_PENDING_KEYS} keys waiting to be authorized" in text.stdout
        assert f"  let it in    {some['authorize_command']}" in text.stdout

        # The web side shows the same, every peer string escaped.
        web = str(hub.web_endpoint)
        api = get(web + "/api/pending")
        assert api.status == 200 and api.json() == rows
        page = get(web + "/").text
        assert "Waiting to be authorized" in page
        assert HOSTILE not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page

        # The line it prints lets the key in: it leaves the list at once.
        done = cli(config.path, *some["authorize_command"].split()[1:], "--yes")
        assert done.returncode == 0, done.stderr
        after = pending_json(config.path)
        assert some["keyid"] not in {r["keyid"] for r in after}
        assert len(after) == MAX_PENDING_KEYS - 1
        assert get(web + "/api/pending").json() == after
