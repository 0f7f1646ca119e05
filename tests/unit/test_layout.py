"""The layout rules docs/architecture.md states, checked on the source itself.

- Each package's ``__init__`` is its face: nothing outside a package imports its
  private (``_name``) modules or names; tests included.
- Imports follow the package map: ``actors`` builds only on the foundations; the
  server and the agent never import each other; the admin socket does not import
  the server; the foundations import none of the layers above them.
- No class over 300 lines and no function over 60 lines outside cli, bench and pb.
- References to docs/protocol.md sections name a section the document has.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = ("hub", "actors")
PROTOCOL_DOC = ROOT / "docs" / "protocol.md"

FOUNDATIONS = frozenset(
    {
        "hub.errors",
        "hub.identity",
        "hub.scopes",
        "hub.jsonview",
        "hub.payloads",
        "hub.restic",
        "hub.config",
        "hub.store",
        "hub.protocol",
        "hub.pb",
        "hub.threads",
        "hub.status",
        "hub.text",
        "hub.telemetry",
        "hub.fleet",
        "hub.alerting",
    }
)
LAYERS = frozenset(
    {"actors", "hub.server", "hub.admin", "hub.web", "hub.agent", "hub.cli", "hub.bench"}
)

# What each unit may import besides itself; cli and bench may import anything.
ALLOWED: dict[str, frozenset[str]] = {
    "actors": FOUNDATIONS,
    "hub.server": FOUNDATIONS | {"actors", "hub.admin", "hub.web"},
    "hub.admin": FOUNDATIONS | {"actors"},
    "hub.web": FOUNDATIONS | {"actors", "hub.admin"},
    "hub.agent": FOUNDATIONS,
    **{unit: FOUNDATIONS for unit in FOUNDATIONS},
}

MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 60
SIZE_EXEMPT = ("hub/cli/", "hub/bench/", "hub/pb/")


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str
    names: tuple[str, ...]


def python_files(*roots: str) -> Iterator[Path]:
    for root in roots:
        yield from sorted((ROOT / root).rglob("*.py"))


def unit_of(module: str) -> str:
    """The package a module belongs to for these rules: ``hub.store._sqlite`` -> ``hub.store``."""
    parts = module.split(".")
    if parts[0] == "actors":
        return "actors"
    return ".".join(parts[:2])


def module_of(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_in(path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name, ())
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = tuple(alias.name for alias in node.names)
            yield Import(path, node.lineno, node.module, names)
            if node.module in ("hub", "actors"):
                for name in names:
                    yield Import(path, node.lineno, f"{node.module}.{name}", ())


def ours(module: str) -> bool:
    return module.split(".", maxsplit=1)[0] in ("hub", "actors")


def where(found: Import) -> str:
    return f"{found.path.relative_to(ROOT)}:{found.line}"


def test_no_one_reaches_behind_a_package_face() -> None:
    problems = []
    for path in python_files("hub", "actors", "tests", "bin"):
        inside = module_of(path) if path.is_relative_to(ROOT / "hub") or path.is_relative_to(
            ROOT / "actors"
        ) else ""
        for found in imports_in(path):
            if not ours(found.module):
                continue
            parts = found.module.split(".")
            private_parts = [i for i, part in enumerate(parts) if part.startswith("_")]
            for index in private_parts:
                package = ".".join(parts[:index])
                if not (inside == package or inside.startswith(package + ".")):
                    problems.append(f"{where(found)} imports private module {found.module}")
            for name in found.names:
                if name.startswith("_") and not (
                    inside == found.module or inside.startswith(found.module + ".")
                ):
                    problems.append(f"{where(found)} imports private name {found.module}.{name}")
    assert not problems, "\n".join(problems)


def test_imports_follow_the_package_map() -> None:
    problems = []
    for path in python_files(*SOURCE_ROOTS):
        unit = unit_of(module_of(path))
        if unit not in ALLOWED:
            continue
        for found in imports_in(path):
            if not ours(found.module) or found.module in ("hub", "actors"):
                continue
            target = unit_of(found.module)
            if target == unit or target in ALLOWED[unit]:
                continue
            problems.append(f"{where(found)}: {unit} may not import {found.module}")
    assert not problems, "\n".join(problems)


def test_every_unit_is_on_the_map() -> None:
    units = {unit_of(module_of(path)) for path in python_files(*SOURCE_ROOTS)}
    unknown = units - FOUNDATIONS - LAYERS - {"hub"}
    assert not unknown, f"add these to docs/architecture.md and this test: {sorted(unknown)}"


def test_every_package_face_declares_its_public_names() -> None:
    missing = []
    for path in python_files(*SOURCE_ROOTS):
        if path.name != "__init__.py" or "pb" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        declared = any(
            isinstance(node, ast.Assign | ast.AnnAssign)
            and any(
                isinstance(target, ast.Name) and target.id == "__all__"
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
            for node in tree.body
        )
        if not declared:
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"package faces without __all__: {missing}"


def _oversized() -> Iterator[str]:
    for path in python_files(*SOURCE_ROOTS):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(SIZE_EXEMPT):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
            if length > limit:
                yield f"{relative}:{node.lineno} {node.name} is {length} lines (limit {limit})"


def test_no_class_or_function_is_too_long() -> None:
    problems = list(_oversized())
    assert not problems, "\n".join(problems)


_SECTION_HEADING = re.compile(r"^#{2,4} (\d+(?:\.\d+)*)\.? (.+?)\s*$", re.M)
_SECTION_REFERENCE = re.compile(r"protocol\.md\s+§(\d+(?:\.\d+)*)\s+\(([^)]*)\)")
_LOOSE_REFERENCE = re.compile(r"protocol\.md[\s,]+(?:sections?\s+\d|§)")


def protocol_sections() -> dict[str, str]:
    return dict(_SECTION_HEADING.findall(PROTOCOL_DOC.read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    "path", list(python_files(*SOURCE_ROOTS)), ids=lambda p: str(p.relative_to(ROOT))
)
def test_protocol_references_name_real_sections(path: Path) -> None:
    sections = protocol_sections()
    text = re.sub(r"\s+", " ", path.read_text(encoding="utf-8").replace('"""', " "))
    for number, title in _SECTION_REFERENCE.findall(text):
        assert number in sections, f"docs/protocol.md has no section {number}"
        assert title.strip("`") == sections[number].strip("`").strip(), (
            f"docs/protocol.md §{number} is {sections[number]!r}, not {title!r}"
        )
    loose = [
        text[match.start() : match.start() + 60]
        for match in _LOOSE_REFERENCE.finditer(text)
        if not _SECTION_REFERENCE.match(text, match.start())
    ]
    assert not loose, f"write section references as: docs/protocol.md §N (Title): {loose}"


def test_test_modules_have_names_unique_across_the_tiers() -> None:
    """pytest imports test modules by their base name: two tiers' ``test_x.py`` cannot be
    collected in one run."""
    seen: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").glob("*/test_*.py")):
        seen.setdefault(path.name, []).append(path.parent.name)
    assert {name: tiers for name, tiers in seen.items() if len(tiers) > 1} == {}
