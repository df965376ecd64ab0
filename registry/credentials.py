"""Per-device broker credentials, kept by Forewarn and enforced by the broker.

Forewarn keeps each device's credential in ``broker_credentials``: a random 256-bit secret,
shown once, of which only a PBKDF2-SHA512 hash is stored. The broker's own authentication
store is written from that table: Mosquitto's password file (the ``$7$`` format that
``mosquitto_passwd`` writes) and an ACL file in which a device may publish only its own
telemetry and status and subscribe only to its own command topic. After every change the
broker is told to reload (SIGHUP through its pid file, or its watcher in the compose stack
notices the generation file), and Mosquitto drops connected clients whose credential is
gone: a revoked device is cut off at once. EMQX reads the same table directly
(docs/operations.md, "Securing the broker").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import signal
import string
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from forewarn.errors import ConfigError, RecordError, ServiceError
from forewarn.settings import Settings
from registry import repository
from registry.repository import Conn
from registry.types import StoredCredential
from registry.validate import BROKER_ID

# The secret is 256 random bits, not a password a person chose: a guess is hopeless however
# cheap the hash, and Mosquitto hashes the password of every client that connects, so a
# broker restart with 100,000 devices reconnecting must not cost minutes of CPU.
ITERATIONS = 1000
_SALT_CHARS = string.ascii_letters + string.digits
# Mosquitto 2.0 reads exactly 12 bytes of salt; ASCII ones serve EMQX's text salt column too.
SALT_LENGTH = 12


@dataclass(frozen=True, slots=True)
class NewCredential:
    """A credential just made: the only moment its secret is known."""

    device_id: str
    username: str
    password: str
    bridge_base: str | None


def new_salt() -> str:
    """A random salt both Mosquitto's password file and EMQX's authenticator can use."""
    return "".join(secrets.choice(_SALT_CHARS) for _ in range(SALT_LENGTH))


def hash_secret(secret: str, *, salt: str, iterations: int = ITERATIONS) -> str:
    """The hex PBKDF2-SHA512 of `secret` with `salt` (as Mosquitto and EMQX compute it)."""
    return hashlib.pbkdf2_hmac("sha512", secret.encode(), salt.encode(), iterations).hex()


def verify(secret: str, stored: StoredCredential) -> bool:
    """Whether `secret` is the credential's (constant time)."""
    got = hash_secret(secret, salt=stored.salt, iterations=stored.iterations)
    return hmac.compare_digest(got, stored.password_hash)


def password_line(c: StoredCredential) -> str:
    """One line of a Mosquitto password file."""
    salt = base64.b64encode(c.salt.encode()).decode()
    digest = base64.b64encode(bytes.fromhex(c.password_hash)).decode()
    return f"{c.username}:$7${c.iterations}${salt}${digest}"


def acl_text(credentials: Sequence[StoredCredential], *, prefix: str) -> str:
    """The device listener's ACL: every device its own topics; each bridge its base."""
    lines = [
        "# Written by Forewarn (forewarn devices provision/revoke); edits are overwritten.",
        "# A device (username = client id = device id) may publish its own telemetry and",
        "# status and subscribe to its own command topic, nothing else.",
        f"pattern write {prefix}/devices/%u/telemetry",
        f"pattern write {prefix}/devices/%u/status",
        f"pattern read {prefix}/devices/%u/command",
    ]
    for c in credentials:
        if c.bridge_base:
            lines += ["", f"user {c.username}", f"topic readwrite {c.bridge_base}/#"]
    return "\n".join(lines) + "\n"


def provision(
    conn: Conn, settings: Settings, *, device_id: str, bridge_base: str | None = None
) -> NewCredential:
    """Give a registered device a new broker credential (revoking any it had) and update the
    broker's store. The caller commits; the files are written from the committed rows."""
    if not BROKER_ID.fullmatch(device_id):
        raise RecordError(
            "a device that connects to the broker needs an id of letters, digits and . _ : - "
            "(it is its username and a topic level)",
            field="device_id",
        )
    if bridge_base is not None and (not bridge_base or "+" in bridge_base or "#" in bridge_base):
        raise RecordError("a bridge's base topic must be a plain topic", field="bridge")
    secret = secrets.token_urlsafe(32)
    salt = new_salt()
    repository.revoke_credentials(conn, device_id=device_id)
    repository.insert_credential(
        conn,
        username=device_id,
        device_id=device_id,
        bridge_base=bridge_base,
        salt=salt,
        password_hash=hash_secret(secret, salt=salt),
        iterations=ITERATIONS,
    )
    return NewCredential(device_id, device_id, secret, bridge_base)


def sync(conn: Conn, settings: Settings) -> int:
    """Write the broker's password and ACL files from the active credentials and ask the
    broker to reload; returns how many credentials are active. Does nothing to files when
    no password file is configured."""
    active = repository.active_credentials(conn)
    if settings.broker_password_file is None:
        return len(active)
    _write(settings.broker_password_file, "".join(password_line(c) + "\n" for c in active))
    if settings.broker_acl_file is not None:
        _write(settings.broker_acl_file, acl_text(active, prefix=settings.topic_prefix))
    _bump_generation(settings.broker_password_file)
    reload_broker(settings)
    return len(active)


def reload_broker(settings: Settings) -> bool:
    """SIGHUP the broker named by the pid file; False when no pid file is configured."""
    if settings.broker_pid_file is None:
        return False
    try:
        pid = int(settings.broker_pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        raise ServiceError(
            f"cannot tell the broker to reload (pid file {settings.broker_pid_file}): {exc}; "
            "the change is stored and takes effect at its next reload"
        ) from exc
    return True


def _write(path: Path, text: str) -> None:
    """Replace a file atomically: the broker never reads half of it."""
    if not path.parent.is_dir():
        raise ConfigError(f"broker auth directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        # The broker drops root for its own user, which must be able to read it.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _bump_generation(password_file: Path) -> None:
    """A counter beside the password file, for a broker-side watcher to notice a change."""
    marker = password_file.with_name(password_file.name + ".generation")
    try:
        current = int(marker.read_text().strip())
    except (OSError, ValueError):
        current = 0
    _write(marker, f"{current + 1}\n")
