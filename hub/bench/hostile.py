"""hostile: what an authorized client still gets while hostile wire clients attack the hub.

    synchub bench hostile --attack hello-flood

``hello-flood``: ``holders`` connections from ``sources`` loopback addresses each
send a well-formed HELLO and hold it, never sending a PROOF; the moment the hub
ends one (its handshake expired, or it was refused) the holder sends a fresh HELLO.
A share of them replay the authorized client's own public key (public keys are not
secret), the rest use random keys. Meanwhile the authorized client connects
``attempts`` times, one after another, each a fresh connection through the whole
handshake; an attempt counts when the hub's send_config arrives within ``within``
seconds. Baseline, in the same run: the same attempts on the same hub before the
attack starts.

The holders run in their own processes (``python -m hub.bench.hostile``: one JSON
spec line on stdin, ``ready`` then a final report on stdout, stop by closing stdin),
so the hub's and the attackers' costs show apart.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import zmq

from hub import protocol
from hub.bench.report import Goal, Result, figure
from hub.bench.rig import (
    HUB_INSTANCE,
    BenchClient,
    bench_clients,
    bench_dir,
    hub_process,
    make_hub_node,
    raise_open_file_limit,
)
from hub.errors import BenchError
from hub.pb import synchub_pb2 as pb

ATTACKS = ("hello-flood",)
WITHIN_SECONDS = 2.0

Say = Callable[[str], None]


def _quiet(_text: str) -> None:
    pass


@dataclass(frozen=True)
class HolderSpec:
    endpoint: str
    hub_curve_public: str
    count: int
    source: str
    """The loopback address the holder's connections come from."""
    victim_keyid: str
    victim_ed25519pub: str
    victim_share: float
    """The fraction of holders that replay the victim's public key."""


def _random_key() -> tuple[str, str]:
    raw = os.urandom(32)  # any 32 bytes: the hub cannot tell before a PROOF
    keyid = "ed25519." + base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).decode()
    return keyid.rstrip("="), base64.b64encode(raw).decode().rstrip("=")


def _hello(keyid: str, ed25519pub: str, instance_id: str) -> bytes:
    item = pb.SyncStreamItem()
    handshake = item.handshake
    handshake.protocol_version = 1
    handshake.public_key.keyid = keyid
    handshake.public_key.ed25519pub = ed25519pub
    handshake.instance_id = instance_id
    handshake.nonce = os.urandom(32)
    return item.SerializeToString()


def hold_hellos(spec: HolderSpec, stopped: Callable[[], bool]) -> dict[str, int]:
    """Hold ``spec.count`` HELLOs against the hub until ``stopped()``; counts by outcome."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    context.set(zmq.MAX_SOCKETS, spec.count + 64)
    port_and_host = spec.endpoint.removeprefix("tcp://")
    victims = int(spec.count * spec.victim_share)
    keys = [
        (spec.victim_keyid, spec.victim_ed25519pub) if index < victims else _random_key()
        for index in range(spec.count)
    ]
    counts = {"hellos": 0, "challenges": 0, "refused": 0, "expired": 0, "other": 0}
    poller = zmq.Poller()
    sockets: list[zmq.Socket[bytes]] = []
    try:
        for _index in range(spec.count):
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            public, secret = zmq.curve_keypair()
            sock.curve_serverkey = spec.hub_curve_public.encode()
            sock.curve_publickey = public
            sock.curve_secretkey = secret
            sock.connect(f"tcp://{spec.source}:0;{port_and_host}")
            poller.register(sock, zmq.POLLIN)
            sockets.append(sock)
        index_of = {sock: i for i, sock in enumerate(sockets)}
        for index, sock in enumerate(sockets):
            sock.send(_hello(*keys[index], f"holder{index}"))
            counts["hellos"] += 1
        while not stopped():
            for sock, _ in poller.poll(100):
                index = index_of[sock]
                while sock.poll(0):
                    _tally(counts, sock.recv())
                    # Held HELLOs are answered by a CHALLENGE and held; anything else
                    # ended the session: a fresh HELLO at once, on the same connection.
                    if counts.pop("_resend", 0):
                        sock.send(_hello(*keys[index], f"holder{index}"))
                        counts["hellos"] += 1
    finally:
        for sock in sockets:
            sock.close(linger=0)
        context.term()
    return counts


def _tally(counts: dict[str, int], frame: bytes) -> None:
    try:
        item = pb.SyncStreamItem.FromString(frame)
    except Exception:  # a hub that sends garbage is counted, not trusted
        counts["other"] += 1
        return
    action = item.WhichOneof("action")
    if action == "handshake":
        counts["challenges"] += 1
        return
    if action == "error":
        state = item.error.state
        counts["refused" if state == pb.CONNECTION_STATE_RETRY_WAIT else "expired"] += 1
    else:
        counts["other"] += 1
    counts["_resend"] = 1


class Holders:
    """HELLO holders in child processes, one per source address; a context manager."""

    def __init__(self, specs: Sequence[HolderSpec]) -> None:
        self.processes: list[subprocess.Popen[str]] = []
        try:
            for spec in specs:
                process = subprocess.Popen(
                    [sys.executable, "-m", "hub.bench.hostile"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                )
                assert process.stdin is not None
                process.stdin.write(json.dumps(asdict(spec)) + "\n")
                process.stdin.flush()
                self.processes.append(process)
            for process in self.processes:
                assert process.stdout is not None
                if json.loads(process.stdout.readline() or "{}").get("event") != "ready":
                    raise BenchError("a HELLO holder did not start")
        except BaseException:
            self.stop()
            raise

    def __enter__(self) -> Holders:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for process in self.processes:
            try:  # communicate() closes stdin: that is the stop
                out, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                out, _ = process.communicate()
            for line in (out or "").splitlines():
                report = json.loads(line)
                for key, value in report.get("counts", {}).items():
                    totals[key] = totals.get(key, 0) + value
        self.processes = []
        return totals


def connect_attempts(
    endpoint: str, hub_keyid: str, hub_curve_public: str, client: BenchClient,
    attempts: int, *, within: float = WITHIN_SECONDS, hub_instance: str = HUB_INSTANCE,
) -> list[float | None]:
    """Seconds each fresh connection took to the hub's send_config (None: not in time)."""
    results: list[float | None] = []
    pin = protocol.HubPin(hub_instance, hub_keyid)
    for _ in range(attempts):
        results.append(_connect_once(endpoint, hub_curve_public, client, pin, within))
    return results


def _connect_once(
    endpoint: str, hub_curve_public: str, client: BenchClient, pin: protocol.HubPin,
    within: float,
) -> float | None:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    public, secret = zmq.curve_keypair()
    sock.curve_serverkey = hub_curve_public.encode()
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    started = time.monotonic()
    deadline = started + within
    try:
        sock.connect(endpoint)
        handshake = protocol.ClientHandshake(client.signing, client.instance_id, pin)
        sock.send(handshake.hello_frame())
        challenge = _next_item(sock, deadline)
        if challenge is None or challenge.WhichOneof("action") != "handshake":
            return None
        sock.send(handshake.proof_frame(challenge.handshake))
        answer = _next_item(sock, deadline)
        if answer is None or answer.WhichOneof("action") != "send_config":
            return None
        return time.monotonic() - started
    finally:
        sock.close(linger=0)
        context.term()


def _next_item(sock: zmq.Socket[bytes], deadline: float) -> pb.SyncStreamItem | None:
    while (remaining := deadline - time.monotonic()) > 0:
        if not sock.poll(int(remaining * 1000) + 1):
            return None
        item = pb.SyncStreamItem.FromString(sock.recv())
        if item.WhichOneof("action") != "heartbeat":
            return item
    return None


def _sources(count: int) -> list[str]:
    return [f"127.0.0.{2 + index}" for index in range(count)]


def hello_flood_specs(
    endpoint: str, hub_curve_public: str, victim: BenchClient, holders: int, *,
    sources: int, victim_share: float = 0.05,
) -> list[HolderSpec]:
    per_source, extra = divmod(holders, sources)
    return [
        HolderSpec(
            endpoint=endpoint, hub_curve_public=hub_curve_public,
            count=per_source + (1 if index < extra else 0), source=source,
            victim_keyid=victim.keyid, victim_ed25519pub=victim.signing.ed25519pub,
            victim_share=victim_share,
        )
        for index, source in enumerate(_sources(sources))
    ]


def run(
    attack: str = "hello-flood",
    *,
    holders: int = 1000,
    sources: int = 4,
    attempts: int = 20,
    repeat: int = 1,
    keep: Path | None = None,
    say: Say = _quiet,
) -> Result:
    if attack not in ATTACKS:
        raise BenchError(f"unknown attack {attack!r}: expected one of {', '.join(ATTACKS)}")
    if holders < 1 or sources < 1 or attempts < 1 or repeat < 1:
        raise BenchError("--holders, --sources, --attempts and --repeat must be at least 1")
    raise_open_file_limit(2 * holders + 1024)
    [victim] = bench_clients(1)
    connected: list[float] = []
    idle_connected: list[float] = []
    slowest: list[float] = []
    idle_slowest: list[float] = []
    with bench_dir(keep) as root:
        for n in range(repeat):
            node = make_hub_node(root / f"hub-{n}", [victim])
            curve = node.identity.curve.public_text
            keyid = node.identity.signing.keyid
            with hub_process(node) as (_hub, endpoint):
                idle = connect_attempts(endpoint, keyid, curve, victim, attempts)
                specs = hello_flood_specs(endpoint, curve, victim, holders, sources=sources)
                with Holders(specs) as attackers:
                    time.sleep(3.0)  # the holders' HELLOs are in and held
                    under = connect_attempts(endpoint, keyid, curve, victim, attempts)
                    counts = attackers.stop()
            idle_connected.append(sum(t is not None for t in idle))
            connected.append(sum(t is not None for t in under))
            idle_slowest.append(1000 * max((t for t in idle if t is not None), default=0.0))
            slowest.append(1000 * max((t for t in under if t is not None), default=0.0))
            say(f"run {n + 1}/{repeat}: {connected[-1]:.0f}/{attempts} connected under "
                f"attack, {idle_connected[-1]:.0f}/{attempts} idle; holders: {counts}")
    within = figure("hostile.hello_flood_connected", connected, f"of {attempts}",
                    idle_connected, baseline_label="idle hub")
    return Result(
        scenario="hostile",
        figures=(
            within,
            figure("hostile.hello_flood_slowest_ms", slowest, "ms", idle_slowest,
                   baseline_label="idle hub"),
        ),
        goals=(Goal(f">= {attempts - attempts // 20} of {attempts} connected within "
                    f"{WITHIN_SECONDS:g} s (got {within.value:.0f})",
                    within.value >= attempts - attempts // 20),),
        params={"attack": attack, "holders": holders, "sources": sources,
                "attempts": attempts, "repeat": repeat, "hub": "synchub start (process)"},
        notes=(
            "baseline: the same connects on the same hub before the attack",
            f"holders re-send a HELLO the moment the hub ends theirs; 5% replay the "
            f"client's own key; an attempt counts when send_config arrives within "
            f"{WITHIN_SECONDS:g} s",
        ),
    )


def main() -> int:
    """A HELLO-holder process (see the module docstring)."""
    spec = HolderSpec(**json.loads(sys.stdin.readline()))
    sys.stdout.write(json.dumps({"event": "ready"}) + "\n")
    sys.stdout.flush()
    os.set_blocking(sys.stdin.fileno(), False)

    def stopped() -> bool:
        try:
            return os.read(sys.stdin.fileno(), 4096) == b""
        except BlockingIOError:
            return False

    counts = hold_hellos(spec, stopped)
    sys.stdout.write(json.dumps({"event": "final", "counts": counts}) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
