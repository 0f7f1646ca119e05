#!/usr/bin/env python3
"""Hub memory while `synchub ops` lists large operations (docs/security.md §5).

Seeds a hub's oplog with ``--ops`` operations of ``--mib`` MiB each, starts
`synchub start` (``--synchub``: the launcher to measure, this tree's by default),
then runs `synchub ops` and `synchub ops --json` against it, then reads every
operation through the admin socket's ``ops`` pages, and prints the hub's
resident memory before, its peak (VmHWM) and after, and each command's own peak
(the largest of the commands run so far).

    python3 scripts/admin_ops_rss.py                     # this tree
    python3 scripts/admin_ops_rss.py --synchub OTHER/bin/synchub   # another checkout
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.pb import synchub_pb2 as pb  # noqa: E402
from hub.store import SqliteOplogStore  # noqa: E402

MIB = 1024 * 1024


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} for process {pid}")


def reset_peak(pid: int) -> None:
    """Start VmHWM again from the current RSS (Linux: clear_refs 5), so the peaks below
    are the listing's, not the start's (the fleet reads every operation as it starts)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError as exc:
        print(f"  (cannot reset the hub's peak, {exc.strerror}: peaks include its start)")


def seed(data_dir: Path, count: int, mib: int) -> None:
    store = SqliteOplogStore(data_dir / "oplog.sqlite")
    try:
        for index in range(count):
            store.add_local([pb.Operation(
                instance_id="hub1", plan_id="nightly", repo_guid="guid-nas",
                status=pb.STATUS_SUCCESS, unix_time_start_ms=1_700_000_000_000 + index,
                display_message=f"op {index} " + "x" * (mib * MIB),
            )])
    finally:
        store.close()


def wait_listening(process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while b"listening on" not in seen:
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit(f"the hub did not start: {seen.decode(errors='replace')}")
        ready, _, _ = select.select([process.stderr], [], [], 0.5)
        if ready:
            seen += os.read(process.stderr.fileno(), 65536)


def run_cli(launcher: str, config: Path, *args: str) -> tuple[float, int, int]:
    """Seconds, exit status and the command's peak RSS in MiB."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    done = subprocess.run([sys.executable, launcher, "--config", str(config), *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    took = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode:
        print(f"  {' '.join(args)}: exit {done.returncode}: {done.stderr.decode().strip()}")
    return took, done.returncode, max(peak, before) // 1024


def page_through_admin(data_dir: Path, count: int) -> tuple[float, int, int]:
    """Every operation through the admin socket's ``ops`` pages: seconds, pages, the
    largest page's bytes."""
    from hub.admin import ask_hub  # noqa: PLC0415 - this tree's client

    started = time.monotonic()
    pages, largest, seen, before = 0, 0, 0, None
    while True:
        answer = ask_hub(data_dir, "ops", timeout=30, limit=count, before_id=before)
        pages += 1
        largest = max(largest, sum(len(raw) for raw in answer["operations"]))
        seen += len(answer["operations"])
        before = answer.get("next_before_id")
        if before is None or seen >= count:
            return time.monotonic() - started, pages, largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synchub", default=str(ROOT / "bin" / "synchub"))
    parser.add_argument("--ops", type=int, default=20)
    parser.add_argument("--mib", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="synchub-admin-rss-") as base:
        config = Path(base) / "hub.toml"
        config.write_text(
            'instance = "hub1"\ndata_dir = "data"\n[hub]\nbind = "tcp://127.0.0.1:0"\n'
            '[web]\nbind = ""\n'
        )
        (Path(base) / "data").mkdir(mode=0o700)
        seed(Path(base) / "data", args.ops, args.mib)
        hub = subprocess.Popen([sys.executable, args.synchub, "--config", str(config), "start"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
        try:
            wait_listening(hub)
            idle = status_kib(hub.pid, "VmRSS") // 1024
            started_peak = status_kib(hub.pid, "VmHWM") // 1024
            print(f"synchub: {args.synchub}; {args.ops} operations of {args.mib} MiB")
            print(f"hub RSS idle            {idle:6d} MiB  (peak while starting "
                  f"{started_peak} MiB)")
            reset_peak(hub.pid)
            for listing in (("ops",), ("ops", "--json")):
                took, code, cli_peak = run_cli(args.synchub, config, *listing)
                peak = status_kib(hub.pid, "VmHWM") // 1024
                after = status_kib(hub.pid, "VmRSS") // 1024
                print(f"synchub {' '.join(listing):12} {took:6.1f} s  exit {code}  "
                      f"hub peak {peak:6d} MiB  hub after {after:6d} MiB  "
                      f"command peak {cli_peak:6d} MiB")
            reset_peak(hub.pid)
            took, pages, largest = page_through_admin(Path(base) / "data", args.ops)
            peak = status_kib(hub.pid, "VmHWM") // 1024
            after = status_kib(hub.pid, "VmRSS") // 1024
            print(f"admin ops, {pages} pages {took:6.1f} s  largest page {largest / MIB:.1f} MiB  "
                  f"hub peak {peak:6d} MiB  hub after {after:6d} MiB")
        finally:
            hub.terminate()
            hub.wait(timeout=30)


if __name__ == "__main__":
    main()
