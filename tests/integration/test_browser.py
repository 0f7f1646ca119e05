"""The dashboard in a real browser: Debian's headless Chromium, driven by Selenium through
/usr/bin/chromedriver (never a downloaded browser).

A client records a failing job with `synchub run`; its agent delivers it; within 5 s
of the hub having it, the open dashboard (which reloads itself when the fleet
changes) shows that instance and plan with a failed cell, and the failure on top.
The test keeps a screenshot; with SYNCHUB_SCREENSHOT=PATH it is also written there
(docs/images/dashboard.png is made that way).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_support import WEB_ON_FREE_PORT

from hub.agent import Agent, AgentSettings
from hub.config import load_config
from hub.identity import create_identity
from hub.pb import synchub_pb2 as pb
from hub.store import new_operation, open_oplog
from synchub_testing import LAUNCHER, free_tcp_port, running_hub, wait_until

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHARED = """\
[[repos]]
id = "nas"
guid = "guid-nas"
uri = "sftp:backup@nas:/srv/restic"

[[plans]]
id = "nightly"
repo = "nas"

[[plans]]
id = "hourly"
repo = "nas"
"""


def _browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian's chromium package)"
    if not CHROMEDRIVER.exists():
        return f"{CHROMEDRIVER} is missing (Debian's chromium-driver package)"
    try:
        import selenium  # noqa: F401, PLC0415
    except ImportError:
        return "selenium is not installed (the test extra)"
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    missing = _browser_missing()
    if missing:
        pytest.skip(missing)
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=subprocess.DEVNULL)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _site(tmp_path: Path) -> tuple[Path, Path]:
    hub_dir, client_dir = tmp_path / "hub", tmp_path / "client"
    hub_dir.mkdir()
    client_dir.mkdir()
    hub_identity = create_identity(hub_dir / "data")
    client_identity = create_identity(client_dir / "data")
    port = free_tcp_port()
    (hub_dir / "synchub.toml").write_text(f"""\
instance = "hub-1"
data_dir = "data"

[hub]
bind = "tcp://127.0.0.1:{port}"
heartbeat_interval = 1

{SHARED}
[[authorized_clients]]
instance_id = "web1"
keyid = "{client_identity.signing.keyid}"
keyid_verified = true
permissions = [ {{ type = "read_config", scopes = ["*"] }} ]
{WEB_ON_FREE_PORT}""")
    (client_dir / "synchub.toml").write_text(f"""\
instance = "web1"
data_dir = "data"

{SHARED}
[[known_hosts]]
instance_id = "hub-1"
endpoint = "tcp://127.0.0.1:{port}"
keyid = "{hub_identity.signing.keyid}"
curve_public_key = "{hub_identity.curve.public_text}"
permissions = [
  {{ type = "read_operations", scopes = ["*"] }},
  {{ type = "read_config", scopes = ["*"] }},
]
""")
    return hub_dir / "synchub.toml", client_dir / "synchub.toml"


def _earlier_runs(client_config: Path) -> None:
    """A few days of history on the client, as its `synchub run` jobs would leave."""
    config = load_config(client_config)
    now = int(time.time() * 1000)
    ops = []
    for n in range(12):
        for plan, every_ms in (("nightly", 86_400_000 // 4), ("hourly", 3_600_000)):
            start = now - (12 - n) * every_ms
            status = pb.STATUS_WARNING if (plan, n) == ("hourly", 7) else pb.STATUS_SUCCESS
            op = new_operation(config, plan_id=plan, repo_id="nas", status=status,
                               start_ms=start, display_message=f"{plan} backup")
            op.unix_time_end_ms = start + 40_000 + n * 1_000
            ops.append(op)
    with open_oplog(config) as oplog:
        oplog.add_local(ops)


def _failures_on_hub(hub: Any) -> list[pb.Operation]:
    found = hub.oplog.query(pb.OpSelector(instance_id="web1")).get(timeout=5)
    return [op for op in found if op.status == pb.STATUS_ERROR]


def test_a_failed_job_shows_on_the_open_dashboard_within_five_seconds(
    tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    hub_config, client_config = _site(tmp_path)
    _earlier_runs(client_config)
    with running_hub(load_config(hub_config)) as hub:
        agent = Agent(load_config(client_config),
                      settings=AgentSettings(heartbeat_interval=1.0))
        agent.start()
        try:
            wait_until(lambda: len(hub.oplog.query(pb.OpSelector()).get(timeout=5)) == 24,
                       timeout=15, what="the client's history on the hub")
            browser.get(f"{hub.web_endpoint}/")
            assert "web1" in browser.find_element(By.ID, "i-web1").text
            assert not browser.find_elements(By.CSS_SELECTOR, "#i-web1 .c.err")

            job = subprocess.run(
                [sys.executable, str(LAUNCHER), "--config", str(client_config), "run",
                 "--plan", "nightly", "--repo", "nas", "--", "sh", "-c",
                 "echo disk full >&2; exit 3"],
                capture_output=True, text=True, timeout=60, check=False,
            )
            assert job.returncode == 3, job.stderr
            wait_until(lambda: bool(_failures_on_hub(hub)), timeout=15, what="the failure")
            had_it = time.monotonic()

            def shown() -> bool:
                cells = browser.find_elements(By.CSS_SELECTOR, "#i-web1 .c.err")
                problems = browser.find_elements(By.CSS_SELECTOR, "#problems .failures li")
                return bool(cells) and any("web1" in p.text and "nightly" in p.text
                                           for p in problems)

            wait_until(shown, timeout=5, what="the dashboard to show the failure")
            assert time.monotonic() - had_it < 5
            page = browser.page_source
            assert page.index('id="problems"') < page.index('id="fleet"')
            row = browser.find_element(By.CSS_SELECTOR, "#i-web1 .c.err")
            assert row.get_attribute("href").endswith(f"/operations/{_failures_on_hub(hub)[0].id}")
            browser.save_screenshot(str(tmp_path / "dashboard.png"))
            target = os.environ.get("SYNCHUB_SCREENSHOT")
            if target:
                shutil.copyfile(tmp_path / "dashboard.png", target)
        finally:
            agent.stop()
