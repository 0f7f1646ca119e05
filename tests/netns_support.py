"""Private test networks built from Linux network namespaces (root only).

One namespace acts as the switch (a bridge); every host namespace is joined to
it by a veth pair and gets an address in a private /24 that only exists inside
these namespaces. Cutting a host's cable is setting its switch-side veth down.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

SUBNET = "10.231.77"


def netns_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@dataclass
class PrivateNetwork:
    """Hosts on one switch; ``address(name)`` is the host's IPv4 address."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    hosts: dict[str, int] = field(default_factory=dict)
    _namespaces: list[str] = field(default_factory=list)

    @property
    def switch(self) -> str:
        return f"sh{self.tag}-sw"

    def namespace(self, host: str) -> str:
        return f"sh{self.tag}-{host}"

    def address(self, host: str) -> str:
        return f"{SUBNET}.{self.hosts[host]}"

    def _switch_port(self, host: str) -> str:
        return f"p{self.tag}{self.hosts[host]}"

    def create(self, names: Sequence[str]) -> None:
        _ip("netns", "add", self.switch)
        self._namespaces.append(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        _ip("-n", self.switch, "link", "set", "lo", "up")
        for number, name in enumerate(names, start=1):
            self.hosts[name] = number
            ns = self.namespace(name)
            _ip("netns", "add", ns)
            self._namespaces.append(ns)
            port = self._switch_port(name)
            _ip("link", "add", port, "netns", self.switch, "type", "veth",
                "peer", "name", "eth0", "netns", ns)
            _ip("-n", self.switch, "link", "set", port, "master", "br0")
            _ip("-n", self.switch, "link", "set", port, "up")
            _ip("-n", ns, "addr", "add", f"{self.address(name)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def cut(self, host: str) -> None:
        _ip("-n", self.switch, "link", "set", self._switch_port(host), "down")

    def mend(self, host: str) -> None:
        _ip("-n", self.switch, "link", "set", self._switch_port(host), "up")

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside ``host``'s namespace."""
        return ["ip", "netns", "exec", self.namespace(host), *argv]

    def destroy(self) -> None:
        for ns in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20,
                           check=False)
        self._namespaces.clear()
