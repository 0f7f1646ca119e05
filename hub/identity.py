"""Node identity: the long-term ed25519 signing key and the CURVE key pair.

This module is the one place that knows the key formats: every other module checks
a key id with ``keyid_problem`` / ``is_valid_keyid`` and a CURVE public key with
``is_valid_curve_public_key``, and signs or verifies through it.

Wire formats (docs/protocol.md §3.2 (Encodings), shared with backrest):

- ``ed25519pub``: standard base64, no padding, of the 32 raw public-key bytes.
- key id: ``"ed25519." + base64url_nopad(SHA-256(raw public key))``.

On disk both keys live in ``<data_dir>/identity/`` (directory mode 0700, files 0600):

``ed25519.key``::

    synchub-ed25519-seed-v1
    <32-byte ed25519 seed, standard base64 without padding>

``curve.key``::

    synchub-curve-keypair-v1
    public <CURVE public key, Z85, 40 characters>
    secret <CURVE secret key, Z85, 40 characters>

The first line names the format so a person can tell what the file holds. Files are
written atomically and a key file readable or writable by group or others is refused.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import secrets
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

import zmq
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from zmq.utils import z85

from hub.errors import AuthError, IdentityError
from hub.pb import synchub_pb2 as pb

KEYID_PREFIX = "ed25519."
ED25519_KEY_BYTES = 32
ED25519_SIGNATURE_BYTES = 64
CURVE_KEY_BYTES = 32
CURVE_KEY_TEXT_CHARS = 40

IDENTITY_DIRNAME = "identity"
ED25519_KEY_FILENAME = "ed25519.key"
CURVE_KEY_FILENAME = "curve.key"
ED25519_KEY_FORMAT = "synchub-ed25519-seed-v1"
CURVE_KEY_FORMAT = "synchub-curve-keypair-v1"

_MAX_KEY_FILE_BYTES = 4096
_B64_32_NOPAD = re.compile(r"[A-Za-z0-9+/]{43}")
_KEYID = re.compile(r"ed25519\.[A-Za-z0-9_-]{43}")
_Z85_CHARS = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)


def _clip(text: str, limit: int = 80) -> str:
    """Shorten untrusted text before it goes into an error message."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


# --- encodings ---------------------------------------------------------------


def derive_keyid(raw_public_key: bytes) -> str:
    """The key id of a raw 32-byte ed25519 public key."""
    if len(raw_public_key) != ED25519_KEY_BYTES:
        raise IdentityError(
            f"an ed25519 public key is {ED25519_KEY_BYTES} bytes, got {len(raw_public_key)}"
        )
    digest = hashlib.sha256(raw_public_key).digest()
    return KEYID_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def keyid_problem(text: str) -> str | None:
    """What is wrong with ``text`` as a key id, or None when it is one.

    A key id is the prefix and 43 base64url characters in canonical form (the last
    one's two spare bits clear, so one digest has exactly one text).
    """
    if _KEYID.fullmatch(text) is None:
        return (
            "expected 'ed25519.' followed by 43 base64url characters, as `synchub id` "
            "prints on the client"
        )
    encoded = text.removeprefix(KEYID_PREFIX)
    raw = base64.urlsafe_b64decode(encoded + "=")
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != encoded:
        return "its last character is not canonical"
    return None


def is_valid_keyid(text: str) -> bool:
    """Whether ``text`` is a key id (see ``keyid_problem``)."""
    return keyid_problem(text) is None


def encode_ed25519pub(raw: bytes) -> str:
    """The wire text of a raw public key: standard base64 without padding."""
    if len(raw) != ED25519_KEY_BYTES:
        raise IdentityError(f"an ed25519 public key is {ED25519_KEY_BYTES} bytes, got {len(raw)}")
    return base64.b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_b64_32(text: str, what: str) -> bytes:
    """Decode 32 bytes of standard base64, padded or not, in canonical form only."""
    unpadded = text[:-1] if text.endswith("=") else text
    if _B64_32_NOPAD.fullmatch(unpadded) is None:
        raise IdentityError(
            f"{what} must be {ED25519_KEY_BYTES} bytes of standard base64 "
            f"(43 characters, optionally one '='), got {_clip(text)}"
        )
    try:
        raw = base64.b64decode(unpadded + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise IdentityError(f"{what} is not valid base64: {_clip(text)}") from exc
    # The last character carries two spare bits; only the encoding with them clear is accepted,
    # so one key has exactly one text.
    if base64.b64encode(raw).rstrip(b"=").decode("ascii") != unpadded:
        raise IdentityError(f"{what} is not in canonical base64 form: {_clip(text)}")
    return raw


def decode_ed25519pub(text: str) -> bytes:
    """The 32 raw bytes of an ``ed25519pub`` text (accepted with or without padding)."""
    return _decode_b64_32(text, "ed25519pub")


def _decode_z85_key(text: str) -> bytes | None:
    if len(text) != CURVE_KEY_TEXT_CHARS or not set(text) <= _Z85_CHARS:
        return None
    try:
        raw = z85.decode(text)
    except (ValueError, KeyError, struct.error):
        return None
    return raw if len(raw) == CURVE_KEY_BYTES else None


def is_valid_curve_public_key(text: str) -> bool:
    """Whether ``text`` is a CURVE key in Z85: 40 characters decoding to 32 bytes."""
    return _decode_z85_key(text) is not None


# --- signing -----------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class SigningIdentity:
    """A node's ed25519 key, held as its 32-byte seed. The repr shows only the key id."""

    seed: bytes
    _private: Ed25519PrivateKey = field(init=False, compare=False)
    _public_raw: bytes = field(init=False, compare=False)
    _keyid: str = field(init=False, compare=False)
    """Derived once: a hub signs every handshake's challenge with it."""

    def __post_init__(self) -> None:
        if not isinstance(self.seed, bytes) or len(self.seed) != ED25519_KEY_BYTES:
            raise IdentityError(f"an ed25519 seed is {ED25519_KEY_BYTES} bytes")
        private = Ed25519PrivateKey.from_private_bytes(self.seed)
        public_raw = private.public_key().public_bytes_raw()
        object.__setattr__(self, "_private", private)
        object.__setattr__(self, "_public_raw", public_raw)
        object.__setattr__(self, "_keyid", derive_keyid(public_raw))

    def __repr__(self) -> str:
        return f"SigningIdentity(keyid={self.keyid!r})"

    @classmethod
    def generate(cls) -> SigningIdentity:
        return cls(secrets.token_bytes(ED25519_KEY_BYTES))

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningIdentity:
        return cls(bytes(seed))

    @property
    def public_key_raw(self) -> bytes:
        return self._public_raw

    @property
    def keyid(self) -> str:
        return self._keyid

    @property
    def ed25519pub(self) -> str:
        return encode_ed25519pub(self._public_raw)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def public_key_message(self) -> pb.PublicKey:
        """A fresh ``PublicKey`` message for this identity."""
        return pb.PublicKey(keyid=self.keyid, ed25519pub=self.ed25519pub)


def verify_signature(raw_public_key: bytes, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is a valid ed25519 signature of ``data``; False on any bad input."""
    try:
        if len(raw_public_key) != ED25519_KEY_BYTES or len(signature) != ED25519_SIGNATURE_BYTES:
            return False
        Ed25519PublicKey.from_public_bytes(bytes(raw_public_key)).verify(
            bytes(signature), bytes(data)
        )
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def public_key_from_message(msg: pb.PublicKey) -> bytes:
    """The raw key of a peer's ``PublicKey``, after checking its keyid matches (else AuthError)."""
    try:
        raw = decode_ed25519pub(msg.ed25519pub)
    except IdentityError as exc:
        raise AuthError(
            f"malformed public key for keyid {_clip(msg.keyid)}: {exc}", reason="bad_key"
        ) from exc
    derived = derive_keyid(raw)
    if msg.keyid != derived:
        raise AuthError(
            f"public key keyid {_clip(msg.keyid)} does not match its ed25519pub "
            f"(which derives {derived})",
            reason="bad_key",
        )
    return raw


# --- CURVE -------------------------------------------------------------------


@dataclass(frozen=True)
class CurveKeyPair:
    """A CURVE key pair, both halves Z85-encoded (40 bytes each). The repr hides the secret."""

    public: bytes
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for name, value in (("public", self.public), ("secret", self.secret)):
            if (
                not isinstance(value, bytes)
                or _decode_z85_key(value.decode("ascii", "replace")) is None
            ):
                raise IdentityError(
                    f"CURVE {name} key must be {CURVE_KEY_TEXT_CHARS} characters of Z85"
                )

    @classmethod
    def generate(cls) -> CurveKeyPair:
        public, secret = zmq.curve_keypair()
        return cls(public=public, secret=secret)

    @classmethod
    def from_secret(cls, secret: bytes) -> CurveKeyPair:
        """Rebuild the pair from its Z85 secret key."""
        if _decode_z85_key(secret.decode("ascii", "replace")) is None:
            raise IdentityError(
                f"CURVE secret key must be {CURVE_KEY_TEXT_CHARS} characters of Z85"
            )
        return cls(public=zmq.curve_public(secret), secret=secret)

    @property
    def public_text(self) -> str:
        return self.public.decode("ascii")


@dataclass(frozen=True)
class NodeIdentity:
    signing: SigningIdentity
    curve: CurveKeyPair


# --- files -------------------------------------------------------------------


def identity_dir(data_dir: Path) -> Path:
    return Path(data_dir) / IDENTITY_DIRNAME


def _key_paths(data_dir: Path) -> tuple[Path, Path]:
    directory = identity_dir(data_dir)
    return directory / ED25519_KEY_FILENAME, directory / CURVE_KEY_FILENAME


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_private_file(path: Path, content: bytes) -> None:
    """Atomically replace ``path`` with ``content``, mode 0600 from creation on."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(content)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _read_private_file(path: Path) -> str:
    """Read a key file, refusing one that is not a regular file or is open to group/others."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise IdentityError(f"cannot read key file {path}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise IdentityError(f"key file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise IdentityError(
                f"key file {path} is readable or writable by group or others "
                f"(mode {mode:04o}): run `chmod 600 {path}`"
            )
        data = os.read(fd, _MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise IdentityError(
            f"key file {path} is malformed: larger than {_MAX_KEY_FILE_BYTES} bytes"
        )
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise IdentityError(f"key file {path} is malformed: not ASCII text") from exc


def _key_lines(path: Path, text: str, header: str, count: int) -> list[str]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != header:
        raise IdentityError(f"key file {path} is malformed: first line must be {header!r}")
    body = [line.strip() for line in lines[1:] if line.strip()]
    if len(body) != count:
        raise IdentityError(
            f"key file {path} is malformed: expected {count} key line(s) after the header, "
            f"found {len(body)}"
        )
    return body


def _format_ed25519(signing: SigningIdentity) -> bytes:
    seed_text = base64.b64encode(signing.seed).rstrip(b"=").decode("ascii")
    return f"{ED25519_KEY_FORMAT}\n{seed_text}\n".encode("ascii")


def _parse_ed25519(path: Path, text: str) -> SigningIdentity:
    (seed_line,) = _key_lines(path, text, ED25519_KEY_FORMAT, 1)
    try:
        seed = _decode_b64_32(seed_line, "the ed25519 seed")
    except IdentityError as exc:
        raise IdentityError(f"key file {path} is malformed: {exc}") from exc
    return SigningIdentity.from_seed(seed)


def _format_curve(curve: CurveKeyPair) -> bytes:
    return (
        f"{CURVE_KEY_FORMAT}\n"
        f"public {curve.public.decode('ascii')}\n"
        f"secret {curve.secret.decode('ascii')}\n"
    ).encode("ascii")


def _parse_curve(path: Path, text: str) -> CurveKeyPair:
    values: dict[str, str] = {}
    for line in _key_lines(path, text, CURVE_KEY_FORMAT, 2):
        name, _, value = line.partition(" ")
        if name not in ("public", "secret") or name in values:
            raise IdentityError(
                f"key file {path} is malformed: expected one 'public <Z85>' "
                "and one 'secret <Z85>' line"
            )
        values[name] = value.strip()
    for name, value in values.items():
        if _decode_z85_key(value) is None:
            raise IdentityError(
                f"key file {path} is malformed: the {name} key is not "
                f"{CURVE_KEY_TEXT_CHARS} characters of Z85"
            )
    pair = CurveKeyPair.from_secret(values["secret"].encode("ascii"))
    if pair.public_text != values["public"]:
        raise IdentityError(
            f"key file {path} is malformed: the public key does not belong to the secret key"
        )
    return pair


def load_identity(data_dir: Path) -> NodeIdentity:
    """Load the node's keys from ``data_dir``; IdentityError if missing, malformed or unsafe."""
    ed_path, curve_path = _key_paths(data_dir)
    present = {p: p.exists() for p in (ed_path, curve_path)}
    if not any(present.values()):
        raise IdentityError(f"no identity in {identity_dir(data_dir)}: run `synchub keygen`")
    for path, exists in present.items():
        if not exists:
            raise IdentityError(
                f"incomplete identity in {identity_dir(data_dir)}: {path} is missing; "
                "run `synchub keygen --force` to create a new one "
                "(clients that pinned the old key will be refused)"
            )
    signing = _parse_ed25519(ed_path, _read_private_file(ed_path))
    curve = _parse_curve(curve_path, _read_private_file(curve_path))
    return NodeIdentity(signing=signing, curve=curve)


def create_identity(data_dir: Path, *, force: bool = False) -> NodeIdentity:
    """Generate and save new keys; refuse to replace existing ones unless ``force``."""
    directory = identity_dir(data_dir)
    ed_path, curve_path = _key_paths(data_dir)
    if not force and (ed_path.exists() or curve_path.exists()):
        raise IdentityError(
            f"an identity already exists in {directory}; use --force to replace it "
            "(clients that pinned the old key will be refused)"
        )
    try:
        # A data_dir this creates is 0700 like the identity folder (docs/security.md);
        # one that exists keeps the mode its owner gave it.
        Path(data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
        identity = NodeIdentity(signing=SigningIdentity.generate(), curve=CurveKeyPair.generate())
        _write_private_file(curve_path, _format_curve(identity.curve))
        _write_private_file(ed_path, _format_ed25519(identity.signing))
    except OSError as exc:
        raise IdentityError(f"cannot write identity to {directory}: {exc}") from exc
    return identity


def remove_identity(data_dir: Path) -> None:
    """Delete the identity files (and the identity folder, when that leaves it empty):
    for undoing one just created by a start that then failed."""
    for path in _key_paths(data_dir):
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        identity_dir(data_dir).rmdir()


def load_or_create_identity(data_dir: Path) -> tuple[NodeIdentity, bool]:
    """The node's identity, creating one when there is none; the flag says it was created."""
    ed_path, curve_path = _key_paths(data_dir)
    if not ed_path.exists() and not curve_path.exists():
        return create_identity(data_dir), True
    return load_identity(data_dir), False
