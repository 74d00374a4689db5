"""Passwords and tokens: the rules for new passwords, after NIST SP 800-63B (length over composition, common and
guessable ones refused), and how passwords and tokens are hashed."""

import hashlib
import logging
import re
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher

from tracker.core.errors import TrackerError
from tracker.storage.database import Cursor

MIN_LENGTH = 12
MAX_LENGTH = 256  # long passphrases are welcome; beyond this it is not a password someone types
COMMON_FILE = Path(__file__).resolve().parent / "common_passwords.txt"
_SEQUENCES = ("abcdefghijklmnopqrstuvwxyz" * 2, "0123456789" * 3, "qwertyuiopasdfghjklzxcvbnm" * 2)
_SEPARATORS = re.compile(r"[\W_]+")


class PasswordRejected(TrackerError):
    """A new password that breaks one of the rules; the message says which, and what to do."""


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(_squeezed(line) for line in lines if line and not line.startswith("#"))


def _squeezed(text: str) -> str:
    """Lower case without spaces or punctuation: 'Password-1234' and 'password 1234' compare as one."""
    return _SEPARATORS.sub("", text.casefold())


def check_new_password(password: str, username: str = "", name: str = "", email: str = "") -> None:
    """Raise PasswordRejected for a new password that is too short, too long, common, a run or repetition of
    characters, or built from the account's own user name, the person's name or e-mail. No composition rules."""
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(
            f"The password needs at least {MIN_LENGTH} characters (it has {len(password)}); "
            "a few unrelated words make a long password that is easy to remember."
        )
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"The password can have at most {MAX_LENGTH} characters.")
    squeezed = _squeezed(password)
    if squeezed in common_passwords() or len(set(squeezed)) < 5:
        raise PasswordRejected("This password is among the most common ones, which are guessed first; choose another.")
    if any(squeezed in seq or squeezed in seq[::-1] for seq in _SEQUENCES):
        raise PasswordRejected("This password is a run of keys or letters, which is guessed first; choose another.")
    local = email.partition("@")[0]
    own = {_squeezed(username), _squeezed(local), _squeezed(name)}
    own |= {_squeezed(part) for part in re.split(r"[\s.@_-]+", f"{name} {local}")}
    if any(len(word) >= 4 and word in squeezed for word in own):
        raise PasswordRejected("The password must not contain your user name, name or e-mail address; choose another.")


log = logging.getLogger("milestone.accounts")
# Argon2id with OWASP's parameters (Password Storage Cheat Sheet: 19 MiB, 2 passes, 1 lane): a sign-in keeps one
# core busy for about 0.1 s, so the sign-ins of different people run side by side. argon2-cffi's default (64 MiB,
# 3 passes, 4 lanes) took 0.6 s on every core of a 2-core server: 50 people signing in at once waited 30-50 s.
# A hash made with other parameters still verifies, and is made again with these at its next sign-in.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def person_contact(cur: Cursor, person_id: str) -> tuple[str, str] | None:
    """The name and e-mail of a learner or staff member."""
    row = cur.execute(
        "SELECT name, email FROM learners WHERE id = ? UNION ALL SELECT name, email FROM staff WHERE id = ?",
        [person_id, person_id],
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def check_password_rules(cur: Cursor, password: str, username: str, person_id: str) -> None:
    name, email = person_contact(cur, person_id) or ("", "")
    check_new_password(password, username, name, email)
