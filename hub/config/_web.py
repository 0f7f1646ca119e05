"""Loading ``[web]`` and ``[[alerts]]``: the hub's HTTP side and the alerts it raises.

Called by ``_load.parse_config_text`` with its ``_Table`` objects, so every problem is
a ConfigError naming the file, the key path (``web.token``, ``alerts[1].after``) and
what was expected, like every other key.
"""

from __future__ import annotations

import string
import urllib.parse
from collections.abc import Mapping
from typing import Any, Protocol

from hub.config._model import (
    ALERT_CONDITIONS,
    DEFAULT_WEB_BIND,
    AlertRule,
    AlertWhen,
    WebSettings,
    split_host_port,
)
from hub.errors import ConfigError
from hub.scopes import ID_PATTERN, ID_RULE
from hub.text import closest_match


class _Table(Protocol):
    """What this module uses of ``_load``'s table under validation."""

    data: Mapping[str, Any]

    def key(self, name: str) -> str: ...
    def error(self, name: str, problem: str) -> ConfigError: ...
    def check_keys(self, allowed: tuple[str, ...]) -> None: ...
    def string(self, name: str, default: Any = ..., expected: str = ...) -> str: ...
    def ident(self, name: str) -> str: ...
    def seconds(self, name: str, default: float) -> float: ...
    def strings(self, name: str) -> tuple[str, ...]: ...
    def tables(self, name: str) -> list[Any]: ...

WEB_KEYS = ("bind", "token")
ALERT_KEYS = ("name", "when", "after", "instances", "repos", "plans", "webhook", "command")

MIN_TOKEN_CHARS = 16
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-._~+/=")
_TOKEN_HINT = "e.g. the output of `openssl rand -hex 32`"  # noqa: S105 - a hint, no secret


def parse_web(table: _Table | None) -> WebSettings:
    if table is None:
        return WebSettings()
    table.check_keys(WEB_KEYS)
    bind = table.data.get("bind", DEFAULT_WEB_BIND)
    if not isinstance(bind, str):
        raise table.error("bind", f'expected "<address>:<port>" or "" (off), got {bind!r}')
    if bind:
        try:
            split_host_port(bind)
        except ValueError as exc:
            raise table.error("bind", f'{exc}, or "" to turn the web side off') from exc
    token = _token(table)
    web = WebSettings(bind=bind, token=token, bind_from_file="bind" in table.data)
    if web.enabled and not web.loopback and token is None:
        raise table.error(
            "token",
            f"required when web.bind ({bind}) is not a loopback address: set a random "
            f"token of at least {MIN_TOKEN_CHARS} characters ({_TOKEN_HINT}), or bind to "
            "127.0.0.1 behind a reverse proxy",
        )
    return web


def _token(table: _Table) -> str | None:
    if "token" not in table.data:
        return None
    token = table.data["token"]
    if not isinstance(token, str) or len(token) < MIN_TOKEN_CHARS:
        raise table.error(
            "token", f"expected a string of at least {MIN_TOKEN_CHARS} characters ({_TOKEN_HINT})"
        )
    if not set(token) <= _TOKEN_CHARS:
        raise table.error(
            "token", "may hold only letters, digits and -._~+/= (it travels in an HTTP header)"
        )
    return token


def parse_alerts(top: _Table) -> tuple[AlertRule, ...]:
    rules: list[AlertRule] = []
    names: dict[str, str] = {}
    for table in top.tables("alerts"):
        table.check_keys(ALERT_KEYS)
        name = table.ident("name")
        if name in names:
            raise table.error("name", f"duplicate alert name {name!r} (already used at "
                              f"{names[name]})")
        names[name] = table.key("name")
        rules.append(_rule(table, name))
    return tuple(rules)


def _rule(table: _Table, name: str) -> AlertRule:
    when = _when(table)
    after: float | None = None
    if when == "operation_failed":
        if "after" in table.data:
            raise table.error("after", "operation_failed fires at once: remove `after`")
    else:
        if "after" not in table.data:
            raise table.error("after", f"missing; {when} needs a number of seconds")
        after = table.seconds("after", 1.0)
    if when == "peer_lost":
        for key in ("repos", "plans"):
            if key in table.data:
                raise table.error(key, "peer_lost watches peers: filter with `instances` only")
    webhook = _webhook(table)
    command = _command(table)
    if webhook is None and not command:
        raise table.error(
            "webhook", "an alert needs a delivery: `webhook` (a URL) and/or `command` (an array)"
        )
    return AlertRule(
        name=name,
        when=when,
        after=after,
        instances=_ids(table, "instances"),
        repos=_ids(table, "repos"),
        plans=_ids(table, "plans"),
        webhook=webhook,
        command=command,
    )


def _when(table: _Table) -> AlertWhen:
    expected = " | ".join(ALERT_CONDITIONS)
    when = table.string("when", expected=expected)
    if when not in ALERT_CONDITIONS:
        close = closest_match(when, ALERT_CONDITIONS)
        hint = f"did you mean {close!r}? " if close else ""
        raise table.error("when", f"unknown condition {when!r}; {hint}expected one of: {expected}")
    return when


def _ids(table: _Table, name: str) -> tuple[str, ...]:
    values = table.strings(name)
    for index, value in enumerate(values):
        if not ID_PATTERN.fullmatch(value):
            raise table.error(f"{name}[{index}]", f"expected an id ({ID_RULE}), got {value!r}")
    return values


def _webhook(table: _Table) -> str | None:
    if "webhook" not in table.data:
        return None
    url = table.string("webhook", expected="an http:// or https:// URL")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise table.error("webhook", f"expected an http:// or https:// URL, got {url!r}")
    return url


def _command(table: _Table) -> tuple[str, ...]:
    if "command" not in table.data:
        return ()
    command = table.strings("command")
    if not command or not command[0]:
        raise table.error(
            "command", 'expected a program and its arguments, e.g. ["/usr/local/bin/notify"]'
        )
    return command
