"""docs/protocol.md agrees with the schema and the code it documents.

The document is what other teams build clients from, so its field tables, enum
values, worked-example values, handshake labels and key numbers are checked here
against the protobuf descriptors and the project's own code.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from hub.config import HubSettings
from hub.identity import SigningIdentity
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    LABEL_CLIENT,
    LABEL_HUB,
    LABEL_JOIN,
    LOG_ANSWERS_AT_ONCE,
    LOG_CHUNK_BYTES,
    LOG_REPLIES_QUEUED,
    LOG_REQUEST_MAX_BYTES,
    LOG_REQUEST_TIMEOUT,
    LOG_REQUESTS_PER_SESSION,
    MAX_BATCH_OPERATIONS,
    MAX_INSTANCE_ID_BYTES,
    NONCE_BYTES,
    PROTOCOL_VERSION,
    InvitationToken,
    Transcript,
    challenge_item,
    hello_item,
    invitation_id,
    invitation_key,
    join_digest,
    join_item,
    proof_item,
    sign_challenge,
    sign_proof,
)
from hub.server import CURVE_MESSAGE_OVERHEAD, FrontSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
PACKAGE = "synchub.v1."

_HEADING = re.compile(r"^#### (message|enum) `synchub\.v1\.([A-Za-z0-9_.]+)`$")
_MESSAGE_HEADER = ("field", "no.", "type", "notes")
_ENUM_HEADER = ("name", "no.", "notes")
_SCALARS = {
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_FIXED64: "fixed64",
    FieldDescriptor.TYPE_DOUBLE: "double",
}
_VALUE_LINE = re.compile(r"^- \*\*(?P<label>[^*]+)\*\*: `(?P<value>[^`]+)`$")
_HEX_BLOCK = re.compile(r"^(?P<label>[^\n]+) \(hex\):\n\n```\n(?P<body>[0-9a-f\n]+)```$", re.M)

HUB = SigningIdentity.from_seed(bytes(range(32)))
CLIENT = SigningIdentity.from_seed(bytes(range(32, 64)))
CLIENT_NONCE = b"\xc1" * 32
HUB_NONCE = b"\x4b" * 32
TRANSCRIPT = Transcript(
    protocol_version=1,
    hub_instance_id="hub-1",
    hub_keyid=HUB.keyid,
    client_instance_id="web1",
    client_keyid=CLIENT.keyid,
    client_nonce=CLIENT_NONCE,
    hub_nonce=HUB_NONCE,
)


@dataclass(frozen=True)
class Table:
    kind: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _cells(line: str) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in line.strip()[1:-1].split(" | "))


def _tables(text: str) -> dict[str, Table]:
    """Each `#### message|enum` heading's table, keyed by the full type name."""
    tables: dict[str, Table] = {}
    current: str | None = None
    kind = ""
    lines: list[str] = []

    def close() -> None:
        if current is None:
            return
        assert current not in tables, f"{current} is documented twice"
        header = _cells(lines[0]) if lines else ()
        rows = tuple(_cells(line) for line in lines[2:])
        tables[current] = Table(kind, header, rows)

    for line in text.splitlines():
        if line.startswith("#"):
            close()
            current, lines = None, []
            match = _HEADING.match(line)
            if match:
                kind, current = match[1], PACKAGE + match[2]
        elif current is not None and line.startswith("|"):
            lines.append(line)
    close()
    return tables


def _all_messages() -> dict[str, Descriptor]:
    found: dict[str, Descriptor] = {}

    def walk(descriptor: Descriptor) -> None:
        found[descriptor.full_name] = descriptor
        for nested in descriptor.nested_types:
            walk(nested)

    for descriptor in pb.DESCRIPTOR.message_types_by_name.values():
        walk(descriptor)
    return found


def _all_enums() -> dict[str, EnumDescriptor]:
    found = {e.full_name: e for e in pb.DESCRIPTOR.enum_types_by_name.values()}
    for message in _all_messages().values():
        found.update({e.full_name: e for e in message.enum_types})
    return found


def _real_oneof(field: FieldDescriptor) -> str | None:
    oneof = field.containing_oneof
    if oneof is None:
        return None
    synthetic = oneof.name == f"_{field.name}" and len(oneof.fields) == 1
    return None if synthetic else str(oneof.name)


def _type_text(field: FieldDescriptor) -> str:
    named = field.message_type or field.enum_type
    base = str(named.name) if named is not None else _SCALARS[field.type]
    if field.is_repeated:
        return f"repeated {base}"
    if field.containing_oneof is not None and _real_oneof(field) is None:
        return f"optional {base}"
    return base


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tables(doc: str) -> dict[str, Table]:
    return _tables(doc)


@pytest.fixture(scope="module")
def values(doc: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in doc.splitlines():
        match = _VALUE_LINE.match(line)
        if match:
            label = match["label"]
            assert label not in found, f"value label {label!r} is used twice in the doc"
            found[label] = match["value"]
    return found


@pytest.fixture(scope="module")
def hex_blocks(doc: str) -> dict[str, bytes]:
    return {
        m["label"]: bytes.fromhex(m["body"].replace("\n", "")) for m in _HEX_BLOCK.finditer(doc)
    }


# --- schema tables ---------------------------------------------------------------------


def test_every_message_and_enum_has_a_table(tables: dict[str, Table]) -> None:
    documented_messages = {name for name, t in tables.items() if t.kind == "message"}
    documented_enums = {name for name, t in tables.items() if t.kind == "enum"}
    assert documented_messages == set(_all_messages())
    assert documented_enums == set(_all_enums())


@pytest.mark.parametrize("name", sorted(_all_messages()))
def test_message_table_matches_descriptor(tables: dict[str, Table], name: str) -> None:
    descriptor = _all_messages()[name]
    table = tables[name]
    if descriptor.fields:
        assert table.header == _MESSAGE_HEADER, f"{name}: table header"
    documented = {
        row[0]: (int(row[1]), row[2], re.findall(r"oneof `(\w+)`", row[3])) for row in table.rows
    }
    assert len(documented) == len(table.rows), f"{name}: a field is listed twice"
    expected = {
        f.name: (
            f.number,
            _type_text(f),
            [oneof] if (oneof := _real_oneof(f)) is not None else [],
        )
        for f in descriptor.fields
    }
    assert documented == expected


@pytest.mark.parametrize("name", sorted(_all_enums()))
def test_enum_table_matches_descriptor(tables: dict[str, Table], name: str) -> None:
    table = tables[name]
    assert table.header == _ENUM_HEADER
    documented = [(row[0], int(row[1])) for row in table.rows]
    expected = [(v.name, v.number) for v in _all_enums()[name].values]
    assert documented == expected


def test_table_parser_reads_what_it_should() -> None:
    text = "\n".join([
        "#### message `synchub.v1.PublicKey`",
        "",
        "| field | no. | type | notes |",
        "|---|---|---|---|",
        "| keyid | 1 | string | a `x` |",
        "",
        "## Next",
        "| not | part | of | it |",
    ])
    table = _tables(text)[PACKAGE + "PublicKey"]
    assert table.header == _MESSAGE_HEADER
    assert table.rows == (("keyid", "1", "string", "a `x`"),)


def _field(message: str, name: str) -> FieldDescriptor:
    return next(f for f in _all_messages()[PACKAGE + message].fields if f.name == name)


def test_type_text_of_special_fields() -> None:
    assert _type_text(_field("OpSelector", "ids")) == "repeated int64"
    assert _type_text(_field("OpSelector", "plan_id")) == "optional string"
    action = _field("SyncStreamItem", "handshake")
    assert _type_text(action) == "Handshake"
    assert _real_oneof(action) == "action"
    assert _real_oneof(_field("OpSelector", "plan_id")) is None


# --- worked examples ---------------------------------------------------------------------


def test_identity_example(values: dict[str, str]) -> None:
    assert values["seed (hex)"] == bytes(range(32)).hex()
    assert values["public key (hex)"] == HUB.public_key_raw.hex()
    assert values["ed25519pub"] == HUB.ed25519pub
    assert values["SHA-256 of the public key (hex)"] == hashlib.sha256(
        HUB.public_key_raw
    ).hexdigest()
    assert values["keyid"] == HUB.keyid


def test_handshake_example_keys(values: dict[str, str]) -> None:
    assert values["hub keyid"] == HUB.keyid
    assert values["hub ed25519pub"] == HUB.ed25519pub
    assert values["client keyid"] == CLIENT.keyid
    assert values["client ed25519pub"] == CLIENT.ed25519pub


def test_handshake_example_digests_and_signatures(values: dict[str, str]) -> None:
    assert values["transcript(label_hub) digest"] == TRANSCRIPT.hub_digest().hex()
    assert values["transcript(label_client) digest"] == TRANSCRIPT.client_digest().hex()
    assert values["CHALLENGE signature"] == sign_challenge(HUB, TRANSCRIPT).hex()
    assert values["PROOF signature"] == sign_proof(CLIENT, TRANSCRIPT).hex()


def test_transcript_body_is_the_documented_formula(hex_blocks: dict[str, bytes]) -> None:
    def lp(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    body = struct.pack(">Q", 1) + b"".join(
        lp(part)
        for part in (
            b"hub-1",
            HUB.keyid.encode(),
            b"web1",
            CLIENT.keyid.encode(),
            CLIENT_NONCE,
            HUB_NONCE,
        )
    )
    assert hex_blocks["transcript body"] == body
    assert hashlib.sha256(LABEL_HUB + body).digest() == TRANSCRIPT.hub_digest()
    assert hashlib.sha256(LABEL_CLIENT + body).digest() == TRANSCRIPT.client_digest()


def test_handshake_example_frames(hex_blocks: dict[str, bytes]) -> None:
    hello = hello_item(CLIENT, "web1", CLIENT_NONCE)
    challenge = challenge_item(HUB, "hub-1", HUB_NONCE, sign_challenge(HUB, TRANSCRIPT))
    proof = proof_item(sign_proof(CLIENT, TRANSCRIPT))
    assert hex_blocks["HELLO frame"] == hello.SerializeToString()
    assert hex_blocks["CHALLENGE frame"] == challenge.SerializeToString()
    assert hex_blocks["PROOF frame"] == proof.SerializeToString()


INVITATION_SECRET = b"\x5e" * 32


def test_join_example(values: dict[str, str], hex_blocks: dict[str, bytes]) -> None:
    secret = INVITATION_SECRET
    assert values["invitation secret (hex)"] == secret.hex()
    assert values["invitation id"] == invitation_id(secret)
    seed = hashlib.sha256(b"synchub-invite/v1/key\x00" + secret).digest()
    assert values["invitation seed (hex)"] == seed.hex()
    assert values["invitation public key (hex)"] == invitation_key(secret).public_key_raw.hex()
    assert values["transcript(label_join) digest"] == join_digest(TRANSCRIPT).hex()
    join = join_item(secret, TRANSCRIPT)
    assert values["join signature"] == join.signature.hex()
    proof = proof_item(sign_proof(CLIENT, TRANSCRIPT))
    proof.handshake.join.CopyFrom(join)
    assert hex_blocks["PROOF frame with join"] == proof.SerializeToString()
    token = InvitationToken.decode(values["invitation token"])
    assert token == InvitationToken(
        "hub-1", HUB.keyid, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
        ("tcp://hub.example.org:7470",), "web1", secret,
    )
    assert token.encode() == values["invitation token"]


# --- handshake labels and documented numbers ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "label"),
    [("label_hub", LABEL_HUB), ("label_client", LABEL_CLIENT),
     ("label_invite_id", b"synchub-invite/v1/id\x00"),
     ("label_invite_key", b"synchub-invite/v1/key\x00"),
     ("label_join", LABEL_JOIN)],
)
def test_labels_match_the_code(doc: str, name: str, label: bytes) -> None:
    rows = [_cells(line) for line in doc.splitlines() if line.startswith(f"| {name} |")]
    assert len(rows) == 1, f"expected one table row for {name}"
    _, text_cell, hex_cell = rows[0]
    text = re.fullmatch(r"`([^`]+)` then 0x00", text_cell)
    assert text is not None
    assert text[1].encode("ascii") + b"\x00" == label
    assert hex_cell == f"`{label.hex()}`"


def test_documented_numbers_match_the_code(doc: str) -> None:
    front = FrontSettings(bind="tcp://127.0.0.1:0")
    hub = HubSettings()
    max_frame = f"{hub.max_frame_bytes:,}".replace(",", " ")
    assert PROTOCOL_VERSION == 1
    assert f"plus the {CURVE_MESSAGE_OVERHEAD} bytes CURVE adds" in doc
    for phrase in (
        f"| protocol_version | {PROTOCOL_VERSION} |",
        f"| nonce | {NONCE_BYTES} bytes from",
        f"at most {MAX_INSTANCE_ID_BYTES} bytes of",
        f"`max_frame_bytes` (default {max_frame}, i.e. 16 MiB)",
        f"| `ZMQ_SNDHWM` | {front.hwm} messages |",
        f"| `ZMQ_RCVHWM` | {front.recv_hwm} messages |",
        f"more than **{front.session_backlog_high}**",
        f"**{front.throttle_delay_ms} ms**",
        f"together have {front.total_backlog_high} items or "
        f"{front.total_backlog_bytes // 2**20} MiB waiting",
        f"more than {front.pending_backlog_high} frames arrived before the handshake",
        f"(`max_pending_handshakes`, {hub.max_pending_handshakes} by default)",
        f"(`max_pending_per_source`, {hub.max_pending_per_source} by default)",
        f"`proof_timeout` ({hub.proof_timeout:g} s by",
        f"at most {front.max_pending_per_key} handshakes of one key from one address",
        f"`handshake_timeout` ({hub.handshake_timeout:g} s by",
        f"`heartbeat_interval` ({hub.heartbeat_interval:g} s by",
        f"at most **{MAX_BATCH_OPERATIONS} operations**",
    ):
        assert phrase in doc, f"docs/protocol.md no longer says {phrase!r}"


def _spaced(number: int) -> str:
    return f"{number:,}".replace(",", " ")


def test_documented_log_limits_match_the_code(doc: str) -> None:
    for phrase in (
        f"`max_bytes` from 1 to **{_spaced(LOG_REQUEST_MAX_BYTES)}**",
        f"**at most {_spaced(LOG_CHUNK_BYTES)} bytes each**",
        f"A hub keeps at most **{LOG_REQUESTS_PER_SESSION}** requests open per session",
        f"It waits **{LOG_REQUEST_TIMEOUT:g} s**",
        f"(the reference agent answers **{LOG_ANSWERS_AT_ONCE}**)",
        f"(the reference agent: {LOG_REPLIES_QUEUED})",
        f"| max_bytes | 4 | int64 | The most bytes wanted, 1 to {_spaced(LOG_REQUEST_MAX_BYTES)}",
        f"| data | 4 | bytes | At most {_spaced(LOG_CHUNK_BYTES)} bytes of the log. |",
    ):
        flat = " ".join(doc.split())
        assert " ".join(phrase.split()) in flat, f"docs/protocol.md no longer says {phrase!r}"


# --- rules an independent client needs exactly ------------------------------------------


def test_the_doc_points_at_nothing_an_independent_implementer_cannot_use(doc: str) -> None:
    """No Python modules, source files or test files: the document stands on its own."""
    for pattern in (r"\.py\b", r"\btests/", r"`hub\.[a-z_]", r"\bhub/[a-z_]", r"\bactors/",
                    r"\bpytest\b", r"from_seed\("):
        found = re.search(pattern, doc)
        assert found is None, f"docs/protocol.md mentions {found[0]!r} (pattern {pattern})"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _strings(*pairs: tuple[int, str]) -> bytes:
    return b"".join(_len_field(n, text.encode()) for n, text in pairs if text)


def _canonical(version: int, repos: list[tuple[str, str, str]],
               plans: list[tuple[str, str, list[str], list[str]]]) -> bytes:
    """The modno input built by hand from the document's rule, without protobuf."""
    out = _varint(2 << 3) + _varint(version) if version else b""
    for repo_id, uri, guid in repos:
        out += _len_field(3, _strings((1, repo_id), (2, uri), (11, guid)))
    for plan_id, repo, paths, excludes in plans:
        body = _strings((1, plan_id), (2, repo))
        body += b"".join(_len_field(4, p.encode()) for p in paths)
        body += b"".join(_len_field(5, e.encode()) for e in excludes)
        out += _len_field(4, body)
    return out


def test_the_modno_example_follows_the_rule_and_the_code(
    tmp_path: Path, hex_blocks: dict[str, bytes], values: dict[str, str]
) -> None:
    from hub.config import load_config  # noqa: PLC0415
    from hub.scopes import parse_permissions  # noqa: PLC0415

    path = tmp_path / "hub.toml"
    path.write_text(
        'instance = "hub-1"\n'
        '[[repos]]\nid = "nas"\nuri = "sftp:backup@nas:/srv/restic"\nguid = "b8e1c0de"\n'
        '[[plans]]\nid = "nightly"\nrepo = "nas"\npaths = ["/home"]\nexcludes = ["*.tmp"]\n',
        encoding="utf-8",
    )
    config = load_config(path)
    view = config.remote_config_for(parse_permissions([{"type": "read_config",
                                                        "scopes": ["*"]}]))
    documented = hex_blocks["modno input"]
    by_hand = _canonical(1, [("nas", "sftp:backup@nas:/srv/restic", "b8e1c0de")],
                         [("nightly", "nas", ["/home"], ["*.tmp"])])
    unset = pb.RemoteConfig()
    unset.CopyFrom(view)
    unset.ClearField("modno")
    assert documented == by_hand == unset.SerializeToString(deterministic=True)
    digest = hashlib.sha256(documented).digest()
    assert digest.hex() == values["modno input SHA-256"]
    assert int(values["modno"]) == view.modno == int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
    assert digest[0] & 0x80, "the example should show the top bit being cleared"


@pytest.mark.parametrize("views", [
    (1, [("a", "", "g1"), ("b", "s3:x", "")], [("p", "a", ["/x", "/y"], []), ("q", "", [], ["z"])]),
    (1, [], []),
    (0, [("ü", "sftp:ü", "g")], [("p", "ü", [""], ["e"])]),
])
def test_the_modno_rule_is_protobufs_deterministic_encoding(views) -> None:
    version, repos, plans = views
    remote = pb.RemoteConfig(version=version)
    for repo_id, uri, guid in repos:
        remote.repos.add(id=repo_id, uri=uri, guid=guid)
    for plan_id, repo, paths, excludes in plans:
        remote.plans.add(id=plan_id, repo=repo, paths=paths, excludes=excludes)
    assert remote.SerializeToString(deterministic=True) == _canonical(version, repos, plans)


def test_the_backoff_formula_is_the_codes_and_never_under_a_second(doc: str) -> None:
    from hub.protocol import backoff_delay  # noqa: PLC0415

    assert "c = min(300, 2^n)" in doc
    assert "d = uniform(max(1, c / 2), c)" in doc
    assert "**never under 1 s**" in doc
    for n in range(0, 40):
        c = min(300.0, 2.0**n)
        low, high = max(1.0, c / 2), c
        assert backoff_delay(n, rand=lambda: 0.0) == low
        assert backoff_delay(n, rand=lambda: 1.0) == high
        assert low >= 1.0
    # The worked figures: exactly 1 s, then 1 to 2 s, 2 to 4 s, and 150 to 300 s from n = 9.
    assert backoff_delay(0, rand=lambda: 0.5) == 1.0
    assert (backoff_delay(1, rand=lambda: 0.0), backoff_delay(1, rand=lambda: 1.0)) == (1.0, 2.0)
    assert (backoff_delay(2, rand=lambda: 0.0), backoff_delay(2, rand=lambda: 1.0)) == (2.0, 4.0)
    assert backoff_delay(8, rand=lambda: 0.0) == 128.0
    assert (backoff_delay(9, rand=lambda: 0.0), backoff_delay(9, rand=lambda: 1.0)) == (150, 300)


def test_the_wrong_curve_key_events_are_libzmqs(doc: str) -> None:
    import zmq  # noqa: PLC0415

    for name in ("EVENT_CONNECTED", "EVENT_HANDSHAKE_FAILED_NO_DETAIL", "EVENT_DISCONNECTED",
                 "EVENT_CONNECT_RETRIED"):
        assert f"`ZMQ_{name}`" in doc
        assert hasattr(zmq, name)


def test_the_hub_settings_a_client_must_keep_to_are_published_as_documented(
    doc: str, tmp_path: Path
) -> None:
    from hub.cli.identity_cmds import identity_details  # noqa: PLC0415
    from hub.config import load_config  # noqa: PLC0415
    from hub.identity import create_identity  # noqa: PLC0415

    flat = " ".join(doc.split())
    assert ("`synchub id --json` prints (`heartbeat_interval` and `handshake_timeout` in "
            "seconds, `max_frame_bytes`)") in flat
    path = tmp_path / "hub.toml"
    path.write_text('instance = "hub-1"\n[hub]\nheartbeat_interval = 7\nhandshake_timeout = 4\n'
                    "max_frame_bytes = 1048576\n")
    config = load_config(path)
    details = identity_details(config, create_identity(config.data_dir))
    assert (details["heartbeat_interval"], details["handshake_timeout"],
            details["max_frame_bytes"]) == (7.0, 4.0, 1048576)


# --- resumed sync (section 6.8) ----------------------------------------------------------


def test_resumed_sync_worked_example_is_what_the_code_computes(
    hex_blocks: dict[str, bytes], values: dict[str, str]
) -> None:
    from hub.protocol import check_digest_frame, root_range, sync_cursors_frame  # noqa: PLC0415
    from hub.store import SyncCursor, digest_pairs, leaf_hash  # noqa: PLC0415

    assert hex_blocks["leaf input (1, 7)"] == struct.pack(">QQ", 1, 7)
    assert hashlib.sha256(hex_blocks["leaf input (1, 7)"]).hexdigest() == values["SHA-256 of it"]
    for (op_id, modno) in ((1, 7), (2, 9), (70, 3)):
        assert int(values[f"leaf hash ({op_id}, {modno})"], 16) == leaf_hash(op_id, modno)
    buckets = digest_pairs([(1, 7), (2, 9), (70, 3)])
    assert (buckets[0].count, buckets[0].digest) == (2, 0xB56098BE5BA5E688)
    root = root_range(buckets)
    assert (root.count, root.digest, root.last_bucket) == (3, 0x99FBA957DC2E79CB, 2**57 - 1)

    cursor = SyncCursor('["guid-nas",null,[]]', bytes(range(16)), 42)
    assert hex_blocks["sync_cursors frame"] == sync_cursors_frame([cursor])
    selector = pb.OpSelector(
        original_instance_keyid="ed25519.JPbtasv-EAnAMNfKVnwzykgwkRSYI2tVYabIKr7F3ig",
        repo_guid="guid-nas",
    )
    assert hex_blocks["check_digest frame"] == check_digest_frame(selector, [root], cursor)
    answer = pb.SyncStreamItem.FromString(hex_blocks["in-sync answer frame"]).check_digest
    assert answer.in_sync and not answer.hub_ids
    listed = pb.SyncStreamItem.FromString(hex_blocks["listed answer frame"]).check_digest
    assert list(zip(listed.hub_ids, listed.hub_modnos, strict=True)) == [(1, 7), (2, 8), (70, 3)]
    assert pb.SyncStreamItem.Handshake(resync=1).SerializeToString() == bytes.fromhex("c03e01")
