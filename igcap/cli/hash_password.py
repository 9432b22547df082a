"""``python -m igcap hash-password``: a salted hash for the app's password gate (the secrets keep only hashes)."""

from __future__ import annotations

import argparse
import getpass
import sys

DESCRIPTION = "Make a salted hash for the app's password gate (the secrets keep only hashes)."
EXAMPLES = """examples:
  python -m igcap hash-password                 # asks twice, prints the hash
  printf '%s' "$PW" | python -m igcap hash-password --stdin

Put the hash in .streamlit/secrets.toml (or the app's Secrets on Community Cloud):
  [access]
  password_hash = "scrypt$32768$8$1$..."        # one password shared by the team
  [access.passwords]
  Ana = "scrypt$32768$8$1$..."                  # or one per person, under the name they sign in with"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("hash-password", help="make a salted password hash for the app's password gate",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stdin", action="store_true",
                   help="read the password from standard input (one line) instead of asking")
    p.set_defaults(func=run)


def run(args) -> int:
    from igcap.cli import CliError
    from igcap.passwords import MIN_LENGTH, hash_password

    try:
        if args.stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Again: ") != password:
                raise CliError("the two passwords differ; nothing was made")
    except EOFError:
        raise CliError("no password given (no terminal to ask on: pipe it in with --stdin)") from None
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise CliError("the password is not valid text in this terminal's encoding (use UTF-8)") from None
    if len(password) < MIN_LENGTH:
        raise CliError(f"the password is too short (at least {MIN_LENGTH} characters)")
    print(hash_password(password))
    return 0
