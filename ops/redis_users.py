"""Who may do what in Redis: one ACL user per component, and nobody without a password.

Every process logs in as its own user (REDIS_USERNAME, REDIS_PASSWORD), so a leaked password
opens only what that process could already touch, and a local user with no password gets
nothing (`user default off`). What each user may reach comes from the key registry
(hotline.keys), family by family: Rasa only its trackers and locks, the dev sandbox only its
own keys, the console alone the counsellors' accounts and sessions (no other service can read
a session or make a supervisor), the services the families they share, with Rasa's trackers
for the three that erase (an erasure deletes the tracker and rewrites the files: INFO and
BGREWRITEAOF). No service may run the commands Redis marks dangerous (FLUSHALL, CONFIG, KEYS,
DEBUG, ...); only `ops`, the operator's tools and the launcher, may.
Past one machine three more users reach no key at all: `replica` (a replica's login to its
primary), `sentinel` and `healthcheck` (HAProxy finding the primary; ops/replicas.py).

The ACL file holds SHA-256 hashes, never the passwords. In dev the launcher derives each
password from HOTLINE_REDIS_KEY (var/dev.env) and writes var/redis/users.acl; in production
deploy/bin/hotline-make-secrets writes one random password per component and
`python -m ops.redis_users --secrets DIR` writes the ACL file Redis loads (aclfile in
deploy/redis/hotline.conf).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import sys
from collections.abc import Mapping
from pathlib import Path

from hotline import keys


def _globs(owned) -> set[str]:
    return {family.glob() for family in keys.FAMILIES.values() if owned(family)}


def _staff(family: keys.KeyFamily) -> bool:
    """Counsellors' accounts, sessions and the audit of their reads: the console's alone."""
    return family.owner.startswith(("referral.accounts", "referral.console"))


_RASA = _globs(lambda f: f.owner.startswith("Rasa"))
_SANDBOX = _globs(lambda f: f.owner == "channels.sandbox")
_STAFF = _globs(_staff)
# Everything else the services share: conversations, streams, cases, delivery records.
_HOTLINE = _globs(lambda f: True) - _RASA - _SANDBOX - _STAFF


def _keys(*groups: set[str]) -> str:
    return " ".join(f"~{glob}" for glob in sorted(set().union(*groups)))


def _channels(group: set[str]) -> str:
    """The pub/sub channels among a group's families."""
    kinds = {f.glob(): f.kind for f in keys.FAMILIES.values()}
    return " ".join(f"&{glob}" for glob in sorted(group) if kinds[glob] == "pubsub")


_SERVICE = "+@all -@dangerous"
_ERASES = "+info +bgrewriteaof"  # referral.privacy.erase_from_disk

RULES: dict[str, str] = {
    "gateway": f"{_keys(_HOTLINE)} {_SERVICE}",
    "worker": f"{_keys(_HOTLINE, _RASA)} {_SERVICE} {_ERASES}",
    "sender": f"{_keys(_HOTLINE)} {_SERVICE}",
    "actions": f"{_keys(_HOTLINE)} {_SERVICE}",
    "console": f"{_keys(_HOTLINE, _RASA, _STAFF)} {_SERVICE} {_ERASES}",
    "housekeeping": f"{_keys(_HOTLINE, _RASA)} {_SERVICE} {_ERASES}",
    "rasa": f"{_keys(_RASA)} {_SERVICE}",
    "sandbox": f"{_keys(_SANDBOX)} {_channels(_SANDBOX)} {_SERVICE}",
    "ops": "~* &* +@all",
    **{
        # Past one machine (docs/operations.md), the servers' own logins, no keys at all: a
        # replica's to its primary, each Sentinel's to every Redis it watches (the list in
        # Redis' Sentinel docs), HAProxy's health check that finds the primary.
        "replica": "+psync +replconf +ping",
        "sentinel": (
            "allchannels +multi +slaveof +ping +exec +subscribe +config|rewrite +role "
            "+publish +info +client|setname +client|kill +script|kill"
        ),
        "healthcheck": "+auth +ping +info",
    },
}
# The logins of Redis' replication, Sentinel and HAProxy: no process of the hotline's.
INFRASTRUCTURE = frozenset({"replica", "sentinel", "healthcheck"})
# The processes `make run` starts that log in to Redis, and the user each logs in as.
USER_OF = {name: name for name in RULES if name != "ops" and name not in INFRASTRUCTURE}


def derived_password(key: str, user: str) -> str:
    """Dev: each user's password from the one key in var/dev.env."""
    return hmac.new(key.encode(), f"redis-user:{user}".encode(), hashlib.sha256).hexdigest()


def acl_file(passwords: Mapping[str, str]) -> str:
    """The ACL file for these passwords (one per user in RULES): hashes only."""
    missing = sorted(set(RULES) - set(passwords))
    if missing:
        raise ValueError(f"no Redis password for {', '.join(missing)}")
    lines = ["user default off resetkeys resetchannels -@all"]
    for user, rule in RULES.items():
        digest = hashlib.sha256(passwords[user].encode()).hexdigest()
        lines.append(f"user {user} on #{digest} resetkeys resetchannels {rule}")
    return "\n".join(lines) + "\n"


def credentials(user: str, password: str) -> dict[str, str]:
    return {"REDIS_USERNAME": user, "REDIS_PASSWORD": password}


def password_variable(user: str) -> str:
    """Where the launcher's supervisord holds a user's password (each process gets only its
    own, as REDIS_PASSWORD: ops.supervision's --copy)."""
    return f"REDIS_PASSWORD_{user.upper()}"


def secret_file(folder: Path, user: str) -> Path:
    """Production: /etc/hotline/secrets/REDIS_PASSWORD_<user>.env holds REDIS_PASSWORD=…"""
    return folder / f"REDIS_PASSWORD_{user}.env"


def _read_secret(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("REDIS_PASSWORD="):
            return line.split("=", 1)[1]
    raise ValueError(f"{path} holds no REDIS_PASSWORD= line")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.redis_users",
        description="Print the Redis ACL file for the passwords in a secrets folder.",
    )
    parser.add_argument("--secrets", type=Path, required=True, help="e.g. /etc/hotline/secrets")
    args = parser.parse_args(argv)
    try:
        passwords = {user: _read_secret(secret_file(args.secrets, user)) for user in RULES}
    except (OSError, ValueError) as error:
        print(f"ops.redis_users: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(acl_file(passwords))
    return 0


if __name__ == "__main__":
    sys.exit(main())
