"""Identity keys: wire encodings, key ids, signatures, and the key files on disk."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from pathlib import Path

import pytest
import zmq

from hub.errors import AuthError, IdentityError
from hub.identity import (
    CURVE_KEY_FILENAME,
    ED25519_KEY_FILENAME,
    CurveKeyPair,
    NodeIdentity,
    SigningIdentity,
    create_identity,
    decode_ed25519pub,
    derive_keyid,
    encode_ed25519pub,
    is_valid_curve_public_key,
    is_valid_keyid,
    load_identity,
    load_or_create_identity,
    public_key_from_message,
    verify_signature,
)
from hub.pb import synchub_pb2 as pb

SEED_A = bytes(range(32))
SEED_B = bytes(range(32, 64))
PUB_A_HEX = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
PUB_B_HEX = "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"
KEYID_A = "ed25519.Vkdap1RjR0wChd9dvyvKtz2mUTWIOem3dIGy6rEHcIw"
KEYID_B = "ed25519.JPbtasv-EAnAMNfKVnwzykgwkRSYI2tVYabIKr7F3ig"
ED25519PUB_A = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
ED25519PUB_B = "Kay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc"

# RFC 8032, section 7.1, TEST 1 (empty message).
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUB = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065"
    "224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def _keyid_by_hand(raw: bytes) -> str:
    digest = hashlib.sha256(raw).digest()
    return "ed25519." + base64.urlsafe_b64encode(digest).decode().rstrip("=")


# --- encodings and key ids ---------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "pub_hex", "keyid", "ed25519pub"),
    [
        (SEED_A, PUB_A_HEX, KEYID_A, ED25519PUB_A),
        (SEED_B, PUB_B_HEX, KEYID_B, ED25519PUB_B),
    ],
)
def test_fixed_seed_gives_pinned_public_key_keyid_and_ed25519pub(
    seed: bytes, pub_hex: str, keyid: str, ed25519pub: str
) -> None:
    identity = SigningIdentity.from_seed(seed)
    assert identity.public_key_raw.hex() == pub_hex
    assert identity.keyid == keyid == _keyid_by_hand(bytes.fromhex(pub_hex))
    assert identity.ed25519pub == ed25519pub
    assert ed25519pub == base64.b64encode(bytes.fromhex(pub_hex)).decode().rstrip("=")


def test_rfc8032_vector_matches() -> None:
    identity = SigningIdentity.from_seed(RFC8032_SEED)
    assert identity.public_key_raw == RFC8032_PUB
    assert identity.sign(b"") == RFC8032_SIG
    assert verify_signature(RFC8032_PUB, RFC8032_SIG, b"")


def test_keyid_is_prefix_plus_unpadded_base64url_of_sha256() -> None:
    # A key whose SHA-256 contains '-' or '_' in base64url proves the url-safe alphabet.
    keyid = derive_keyid(bytes.fromhex(PUB_B_HEX))
    assert keyid.startswith("ed25519.")
    assert "-" in keyid
    assert "=" not in keyid
    assert len(keyid) == len("ed25519.") + 43
    assert is_valid_keyid(keyid)


def test_derive_keyid_rejects_wrong_length() -> None:
    with pytest.raises(IdentityError):
        derive_keyid(b"\x00" * 31)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        (KEYID_A, True),
        (KEYID_B, True),
        ("ed25519." + "A" * 43, True),
        ("ed25519." + "A" * 42, False),
        ("ed25519." + "A" * 44, False),
        ("ed25519." + "A" * 42 + "=", False),
        ("ed25519." + "A" * 42 + "+", False),
        ("ed25519." + "A" * 42 + "/", False),
        ("rsa." + "A" * 43, False),
        ("Vkdap1RjR0wChd9dvyvKtz2mUTWIOem3dIGy6rEHcIw", False),
        ("", False),
        (KEYID_A + "\n", False),
    ],
)
def test_is_valid_keyid(text: str, valid: bool) -> None:
    assert is_valid_keyid(text) is valid


def test_ed25519pub_has_no_padding_and_decodes_with_or_without_it() -> None:
    raw = bytes.fromhex(PUB_A_HEX)
    text = encode_ed25519pub(raw)
    assert not text.endswith("=")
    assert len(text) == 43
    assert decode_ed25519pub(text) == raw
    assert decode_ed25519pub(text + "=") == raw
    assert base64.b64encode(raw).decode() == text + "="


def test_ed25519pub_uses_the_standard_alphabet() -> None:
    # PUB_A's encoding contains '/', which base64url would spell '_'.
    assert "/" in ED25519PUB_A
    with pytest.raises(IdentityError):
        decode_ed25519pub(ED25519PUB_A.replace("/", "_"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        ED25519PUB_A[:-1],
        ED25519PUB_A + "A",
        ED25519PUB_A + "==",
        ED25519PUB_A[:-1] + "!",
        " " + ED25519PUB_A,
        ED25519PUB_A + "\n",
        "é" * 43,
        base64.b64encode(b"\x01" * 33).decode(),
        base64.b64encode(b"\x01" * 31).decode(),
        ED25519PUB_A[:-1] + "h",  # same bytes with the spare low bits set: not canonical
    ],
)
def test_decode_ed25519pub_rejects_malformed(text: str) -> None:
    with pytest.raises(IdentityError):
        decode_ed25519pub(text)


def test_encode_ed25519pub_rejects_wrong_length() -> None:
    with pytest.raises(IdentityError):
        encode_ed25519pub(b"\x00" * 33)


# --- SigningIdentity and signatures --------------------------------------------


def test_repr_hides_the_seed() -> None:
    identity = SigningIdentity.from_seed(SEED_A)
    text = repr(identity) + str(identity)
    assert KEYID_A in text
    for form in (SEED_A.hex(), repr(SEED_A), base64.b64encode(SEED_A).decode().rstrip("=")):
        assert form not in text


def test_generate_makes_distinct_working_keys() -> None:
    one, two = SigningIdentity.generate(), SigningIdentity.generate()
    assert one.keyid != two.keyid
    assert is_valid_keyid(one.keyid)
    signature = one.sign(b"data")
    assert verify_signature(one.public_key_raw, signature, b"data")
    assert not verify_signature(two.public_key_raw, signature, b"data")


def test_identity_equality_follows_the_seed() -> None:
    assert SigningIdentity.from_seed(SEED_A) == SigningIdentity.from_seed(SEED_A)
    assert SigningIdentity.from_seed(SEED_A) != SigningIdentity.from_seed(SEED_B)


@pytest.mark.parametrize("seed", [b"", b"\x00" * 31, b"\x00" * 33])
def test_from_seed_rejects_wrong_length(seed: bytes) -> None:
    with pytest.raises(IdentityError):
        SigningIdentity.from_seed(seed)


def test_public_key_message_round_trips() -> None:
    identity = SigningIdentity.from_seed(SEED_A)
    msg = identity.public_key_message()
    assert msg.keyid == KEYID_A
    assert msg.ed25519pub == ED25519PUB_A
    assert public_key_from_message(msg) == identity.public_key_raw
    assert identity.public_key_message() is not msg


def test_signature_verifies_and_is_deterministic() -> None:
    identity = SigningIdentity.from_seed(SEED_A)
    signature = identity.sign(b"hello")
    assert len(signature) == 64
    assert identity.sign(b"hello") == signature
    assert verify_signature(identity.public_key_raw, signature, b"hello")


@pytest.mark.parametrize(
    ("key", "signature", "data"),
    [
        (b"", RFC8032_SIG, b""),
        (RFC8032_PUB[:31], RFC8032_SIG, b""),
        (RFC8032_PUB + b"\x00", RFC8032_SIG, b""),
        (RFC8032_PUB, b"", b""),
        (RFC8032_PUB, RFC8032_SIG[:63], b""),
        (RFC8032_PUB, RFC8032_SIG + b"\x00", b""),
        (RFC8032_PUB, b"\xff" * 64, b""),
        (RFC8032_PUB, RFC8032_SIG, b"x"),
        (b"\xff" * 32, RFC8032_SIG, b""),
        (b"\x00" * 32, b"\x00" * 64, b""),
        (bytes.fromhex(PUB_A_HEX), RFC8032_SIG, b""),
    ],
)
def test_verify_signature_is_false_for_bad_input(key: bytes, signature: bytes, data: bytes) -> None:
    assert verify_signature(key, signature, data) is False


# --- PublicKey messages from peers ---------------------------------------------


def test_public_key_from_message_rejects_mismatched_keyid() -> None:
    msg = pb.PublicKey(keyid=KEYID_B, ed25519pub=ED25519PUB_A)
    with pytest.raises(AuthError, match="does not match"):
        public_key_from_message(msg)


@pytest.mark.parametrize(
    "ed25519pub", ["", "not base64!", ED25519PUB_A[:-2], ED25519PUB_A.replace("/", "_")]
)
def test_public_key_from_message_rejects_malformed_key(ed25519pub: str) -> None:
    with pytest.raises(AuthError, match="malformed public key"):
        public_key_from_message(pb.PublicKey(keyid=KEYID_A, ed25519pub=ed25519pub))


def test_public_key_from_message_accepts_padded_key() -> None:
    msg = pb.PublicKey(keyid=KEYID_A, ed25519pub=ED25519PUB_A + "=")
    assert public_key_from_message(msg) == bytes.fromhex(PUB_A_HEX)


def test_public_key_from_message_clips_hostile_keyid_in_message() -> None:
    msg = pb.PublicKey(keyid="x" * 10_000, ed25519pub=ED25519PUB_A)
    with pytest.raises(AuthError) as info:
        public_key_from_message(msg)
    assert len(str(info.value)) < 300


# --- CURVE keys ------------------------------------------------------------------


def test_curve_keypair_generate() -> None:
    pair = CurveKeyPair.generate()
    assert len(pair.public) == 40
    assert len(pair.secret) == 40
    assert pair.public_text == pair.public.decode()
    assert is_valid_curve_public_key(pair.public_text)
    assert zmq.curve_public(pair.secret) == pair.public
    assert CurveKeyPair.from_secret(pair.secret) == pair
    assert pair.secret.decode() not in repr(pair)
    assert pair.public_text in repr(pair)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", True),
        ("0" * 40, True),
        ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf", False),
        ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7x", False),
        ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf~", False),
        ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf,", False),
        ("#" * 40, False),  # each 5-character group overflows 32 bits
        ("é" * 40, False),
        ("", False),
    ],
)
def test_is_valid_curve_public_key(text: str, valid: bool) -> None:
    assert is_valid_curve_public_key(text) is valid


def test_curve_keypair_rejects_bad_keys() -> None:
    good = CurveKeyPair.generate()
    with pytest.raises(IdentityError):
        CurveKeyPair(public=b"short", secret=good.secret)
    with pytest.raises(IdentityError):
        CurveKeyPair(public=good.public, secret=b"~" * 40)
    with pytest.raises(IdentityError):
        CurveKeyPair.from_secret(b"~" * 40)


# --- key files ---------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _key_files(data_dir: Path) -> tuple[Path, Path]:
    return (
        data_dir / "identity" / ED25519_KEY_FILENAME,
        data_dir / "identity" / CURVE_KEY_FILENAME,
    )


def test_create_writes_private_files_and_load_returns_the_same_keys(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    created = create_identity(data_dir)
    ed_path, curve_path = _key_files(data_dir)
    assert _mode(data_dir / "identity") == 0o700
    assert _mode(ed_path) == 0o600
    assert _mode(curve_path) == 0o600
    assert sorted(p.name for p in (data_dir / "identity").iterdir()) == sorted(
        [ED25519_KEY_FILENAME, CURVE_KEY_FILENAME]
    )
    loaded = load_identity(data_dir)
    assert isinstance(loaded, NodeIdentity)
    assert loaded == created
    assert loaded.signing.keyid == created.signing.keyid
    assert loaded.curve.public == created.curve.public
    assert loaded.curve.secret == created.curve.secret


def test_key_files_name_their_format_and_keep_the_secret_in_text(tmp_path: Path) -> None:
    created = create_identity(tmp_path)
    ed_path, curve_path = _key_files(tmp_path)
    ed_lines = ed_path.read_text().splitlines()
    assert ed_lines[0] == "synchub-ed25519-seed-v1"
    assert base64.b64decode(ed_lines[1] + "=") == created.signing.seed
    curve_lines = curve_path.read_text().splitlines()
    assert curve_lines == [
        "synchub-curve-keypair-v1",
        f"public {created.curve.public_text}",
        f"secret {created.curve.secret.decode()}",
    ]


def test_create_is_restrictive_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        create_identity(tmp_path)
    finally:
        os.umask(old)
    ed_path, curve_path = _key_files(tmp_path)
    assert _mode(tmp_path / "identity") == 0o700
    assert _mode(ed_path) == 0o600
    assert _mode(curve_path) == 0o600


def test_create_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    first = create_identity(tmp_path)
    with pytest.raises(IdentityError, match="use --force to replace it") as info:
        create_identity(tmp_path)
    assert "clients that pinned the old key will be refused" in str(info.value)
    assert load_identity(tmp_path) == first


def test_create_refuses_when_only_one_key_file_exists(tmp_path: Path) -> None:
    create_identity(tmp_path)
    _key_files(tmp_path)[1].unlink()
    with pytest.raises(IdentityError, match="--force"):
        create_identity(tmp_path)


def test_force_replaces_the_identity(tmp_path: Path) -> None:
    first = create_identity(tmp_path)
    second = create_identity(tmp_path, force=True)
    assert second.signing.keyid != first.signing.keyid
    assert second.curve.public != first.curve.public
    assert load_identity(tmp_path) == second
    ed_path, curve_path = _key_files(tmp_path)
    assert _mode(ed_path) == 0o600
    assert _mode(curve_path) == 0o600
    leftovers = [p.name for p in (tmp_path / "identity").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_load_missing_identity_says_to_run_keygen(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match=r"no identity in .*: run `synchub keygen`"):
        load_identity(tmp_path)
    (tmp_path / "identity").mkdir()
    with pytest.raises(IdentityError, match="run `synchub keygen`"):
        load_identity(tmp_path)


@pytest.mark.parametrize("which", [0, 1])
def test_load_incomplete_identity_names_the_missing_file(tmp_path: Path, which: int) -> None:
    create_identity(tmp_path)
    missing = _key_files(tmp_path)[which]
    missing.unlink()
    with pytest.raises(IdentityError, match="incomplete identity") as info:
        load_identity(tmp_path)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666])
@pytest.mark.parametrize("which", [0, 1])
def test_load_refuses_a_key_file_open_to_others(tmp_path: Path, mode: int, which: int) -> None:
    create_identity(tmp_path)
    path = _key_files(tmp_path)[which]
    path.chmod(mode)
    with pytest.raises(IdentityError) as info:
        load_identity(tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert f"chmod 600 {path}" in message
    assert f"{mode:04o}" in message


def test_load_accepts_owner_only_modes(tmp_path: Path) -> None:
    created = create_identity(tmp_path)
    for path in _key_files(tmp_path):
        path.chmod(0o400)
    assert load_identity(tmp_path) == created


def _replace_content(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    path.chmod(0o600)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\n",
        b"synchub-ed25519-seed-v1\n",
        b"synchub-curve-keypair-v1\nAAAA\n",
        b"synchub-ed25519-seed-v1\n" + base64.b64encode(b"\x01" * 31) + b"\n",
        b"synchub-ed25519-seed-v1\nnot base64 at all!\n",
        b"synchub-ed25519-seed-v1\n" + b"A" * 43 + b"\n" + b"A" * 43 + b"\n",
        b"\xff\xfe\x00garbage",
        b"synchub-ed25519-seed-v1\n" + b"A" * 10_000,
    ],
)
def test_load_rejects_a_corrupted_ed25519_file(tmp_path: Path, content: bytes) -> None:
    create_identity(tmp_path)
    path = _key_files(tmp_path)[0]
    _replace_content(path, content)
    with pytest.raises(IdentityError, match="malformed") as info:
        load_identity(tmp_path)
    assert str(path) in str(info.value)


def test_load_rejects_corrupted_curve_files(tmp_path: Path) -> None:
    created = create_identity(tmp_path)
    path = _key_files(tmp_path)[1]
    other = CurveKeyPair.generate()
    public, secret = created.curve.public.decode(), created.curve.secret.decode()
    bad_contents = [
        "",
        "synchub-ed25519-seed-v1\npublic x\nsecret y\n",
        f"synchub-curve-keypair-v1\npublic {public}\n",
        f"synchub-curve-keypair-v1\npublic {public}\npublic {public}\n",
        f"synchub-curve-keypair-v1\npublic {public}\nsecret {'~' * 40}\n",
        f"synchub-curve-keypair-v1\npublic {public[:-1]}\nsecret {secret}\n",
        f"synchub-curve-keypair-v1\npublic {other.public_text}\nsecret {secret}\n",
        f"synchub-curve-keypair-v1\nprivate {secret}\npublic {public}\n",
    ]
    for content in bad_contents:
        _replace_content(path, content.encode())
        with pytest.raises(IdentityError, match="malformed") as info:
            load_identity(tmp_path)
        assert str(path) in str(info.value), content


def test_curve_file_lines_may_come_in_either_order(tmp_path: Path) -> None:
    created = create_identity(tmp_path)
    path = _key_files(tmp_path)[1]
    _replace_content(
        path,
        (
            "synchub-curve-keypair-v1\n"
            f"secret {created.curve.secret.decode()}\n"
            f"public {created.curve.public_text}\n"
        ).encode(),
    )
    assert load_identity(tmp_path) == created


def test_load_refuses_a_key_path_that_is_not_a_file(tmp_path: Path) -> None:
    create_identity(tmp_path)
    path = _key_files(tmp_path)[0]
    path.unlink()
    path.mkdir(mode=0o700)
    with pytest.raises(IdentityError, match=re.escape(str(path))):
        load_identity(tmp_path)


def test_load_or_create(tmp_path: Path) -> None:
    created, was_created = load_or_create_identity(tmp_path)
    assert was_created is True
    loaded, was_created = load_or_create_identity(tmp_path)
    assert was_created is False
    assert loaded == created


def test_load_or_create_does_not_paper_over_a_broken_identity(tmp_path: Path) -> None:
    create_identity(tmp_path)
    _key_files(tmp_path)[0].chmod(0o644)
    with pytest.raises(IdentityError, match="chmod 600"):
        load_or_create_identity(tmp_path)
    _key_files(tmp_path)[0].unlink()
    with pytest.raises(IdentityError, match="incomplete identity"):
        load_or_create_identity(tmp_path)
