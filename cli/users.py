"""`povrisk users`: the accounts of the people who use the workbench (store.accounts)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli.console import console, fail

users_app = typer.Typer(
    help="Accounts of the workbench's users: add, list, disable, reset a password.", no_args_is_help=True
)


def _engine():  # type: ignore[no-untyped-def]
    from store.database import create_schema, db_url, make_engine

    engine = make_engine(db_url())
    create_schema(engine)
    return engine


def _password_from_stdin() -> str:
    """The first line of stdin, without its line end (a password manager or `printf` pipes it in; it
    never appears in the shell's history or the process list)."""
    line = sys.stdin.readline()
    if not line:
        raise fail("no password on stdin (pipe it in: printf '%s\\n' \"$PASSWORD\" | povrisk users ...)")
    return line.rstrip("\r\n")


@users_app.command("add")
def users_add(
    user_id: Annotated[str, typer.Option("--id", help="The account's login name.")],
    role: Annotated[
        str, typer.Option(help="cadre (her villages), township, monitor (the county) or analyst.")
    ],
    county: Annotated[str | None, typer.Option(help="The county the account works in.")] = None,
    village: Annotated[list[str] | None, typer.Option(help="A cadre's village (repeat for several).")] = None,
    township: Annotated[
        list[str] | None, typer.Option(help="A township account's township (repeat).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (required).")
    ] = False,
) -> None:
    """Create an account; its password is read from stdin and stored as an Argon2 hash. Villages and
    townships must be in the register's latest round of the county."""
    from store.accounts import AccountError, add_user
    from store.register import county_places

    if not password_stdin:
        raise fail("give the password on stdin with --password-stdin (never as an argument)")
    password = _password_from_stdin()
    engine = _engine()
    known = None
    if county is not None and (village or township):
        places = county_places(engine, county)
        if not places:
            raise fail(
                f"the register holds no county {county}; ingest it first (povrisk ingest DIR --county)"
            )
        known = (frozenset(places), frozenset(t for t in places.values() if t is not None))
    try:
        account = add_user(
            engine,
            user_id,
            role,
            password,
            county_id=county,
            villages=village or (),
            townships=township or (),
            known_places=known,
        )
    except AccountError as error:
        raise fail(str(error)) from error
    where = " ".join(filter(None, [county, *sorted(account.villages | account.townships)]))
    console.print(f"account {user_id} added: {role}{' in ' + where if where else ''}")


@users_app.command("list")
def users_list() -> None:
    """Every account: id, role, county, places, disabled, locked until (never a password or hash)."""
    from store.accounts import list_users

    accounts = list_users(_engine())
    print(accounts.fillna("-").to_string(index=False) if len(accounts) else "no accounts")


@users_app.command("disable")
def users_disable(
    user_id: Annotated[str, typer.Option("--id", help="The account to disable.")],
    enable: Annotated[bool, typer.Option(help="Enable a disabled account again.")] = False,
) -> None:
    """Disable an account (its sessions end at once), or enable it again with --enable."""
    from store.accounts import AccountError, set_disabled

    try:
        set_disabled(_engine(), user_id, disabled=not enable)
    except AccountError as error:
        raise fail(str(error)) from error
    console.print(f"account {user_id} {'enabled' if enable else 'disabled'}")


@users_app.command("reset-password")
def users_reset_password(
    user_id: Annotated[str, typer.Option("--id", help="The account.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from stdin (required).")
    ] = False,
) -> None:
    """Set a new password (read from stdin); lifts a lock and ends the account's sessions."""
    from store.accounts import AccountError, reset_password

    if not password_stdin:
        raise fail("give the new password on stdin with --password-stdin (never as an argument)")
    password = _password_from_stdin()
    try:
        reset_password(_engine(), user_id, password)
    except AccountError as error:
        raise fail(str(error)) from error
    console.print(f"account {user_id}: new password set, lock lifted, sessions ended")
