"""Rendering pages: the Jinja2 environment (autoescape on for everything) and its filters.

Every value a template prints is HTML-escaped unless it is ``Markup`` made here from
escaped parts (``fields_html``, the dashboard's cached rows), so a peer-supplied string
can never become markup. Templates and static files are package data of hub.web.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Mapping
from typing import Any, Final

import jinja2
from markupsafe import Markup, escape

from hub.fleet import HISTORY, status_name
from hub.pb import synchub_pb2 as pb
from hub.web._format import ago, duration, iso, state_class, state_name, status_class, when

STATIC_TYPES: Final = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def _took(op: pb.Operation) -> str:
    start, end = op.unix_time_start_ms, op.unix_time_end_ms
    return duration(end - start if start > 0 and end >= start else None)


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hub.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when, iso=iso, ago=ago, duration=duration, took=_took,
        status_name=status_name, status_class=status_class,
        state_name=state_name, state_class=state_class,
    )
    env.globals["history"] = HISTORY
    return env


class Pages:
    """Renders the templates; every page gets the hub's name, the time and its refresh."""

    def __init__(self, hub: str) -> None:
        self._hub = hub
        self._env = make_environment()
        self._static = _load_static()

    def render(self, name: str, *, now_ms: int, refresh: int = 0, version: str = "",
               **values: Any) -> str:
        template = self._env.get_template(name)
        return template.render(
            hub=self._hub, now_ms=now_ms, refresh=refresh, version=version, **values
        )

    def static(self, name: str) -> tuple[bytes, str] | None:
        return self._static.get(name)


def _load_static() -> dict[str, tuple[bytes, str]]:
    found = {}
    for entry in importlib.resources.files("hub.web").joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in STATIC_TYPES:
            found[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    return found


def fields_html(value: Mapping[str, Any]) -> Markup:
    """A JSON-ready dict (``message_to_dict``) as nested definition lists, all escaped."""
    parts = ['<dl class="fields">']
    for key, item in value.items():
        parts.append(f"<dt>{escape(key)}</dt><dd>{_value_html(item)}</dd>")
    parts.append("</dl>")
    return Markup("".join(parts))  # noqa: S704 - every part was escaped


def _value_html(item: Any) -> Markup | str:
    if isinstance(item, Mapping):
        return fields_html(item)
    if isinstance(item, list):
        if not item:
            return "-"
        return Markup(", ").join(_value_html(element) for element in item)
    if item == "" or item is None:
        return "-"
    return escape(str(item))
