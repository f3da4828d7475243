"""Where commands talk to a person: stderr through rich, errors on one line."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Say what is wrong and give the exit (code 1) to raise."""
    print_error(message)
    return typer.Exit(code=1)


def print_error(message: str) -> None:
    """`error: message` on stderr, on one line however long (never wrapped, never read as markup)."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
