"""Regenerate the protobuf modules in this package from proto/synchub.proto.

Run from a checkout, with the ``dev`` or ``test`` extra installed::

    python -m hub.pb.regenerate

The protoc bundled with the pinned grpcio-tools release is used so that every
machine produces byte-identical output; tests/unit/test_schema.py fails when
the committed modules and proto/ disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROTO_DIR = PACKAGE_DIR.parent.parent / "proto"
PROTO_FILE = PROTO_DIR / "synchub.proto"
GENERATED_FILES = ("synchub_pb2.py", "synchub_pb2.pyi")


def generate(out_dir: Path) -> list[Path]:
    """Compile proto/synchub.proto into ``out_dir``; return the files written."""
    try:
        from grpc_tools import protoc  # noqa: PLC0415 - a dev-only dependency
    except ImportError as exc:
        raise SystemExit(
            "grpcio-tools is not installed: run `pip install -e .[test]` first"
        ) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        str(PROTO_FILE),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {PROTO_FILE}")
    return [out_dir / name for name in GENERATED_FILES]


def main() -> None:
    for path in generate(PACKAGE_DIR):
        print(f"wrote {path.relative_to(PACKAGE_DIR.parent.parent)}")


if __name__ == "__main__":
    main()
    sys.exit(0)
