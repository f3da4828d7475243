"""Running povrisk commands in process as a person runs them, for the CLI tests."""

from __future__ import annotations

from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def invoke(*arguments: str) -> tuple[int, str]:
    """Exit code and everything printed (stdout and stderr); an exception other than an exit fails."""
    result = runner.invoke(app, list(arguments))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def invoke_lines(*arguments: str) -> tuple[int, list[str]]:
    """`invoke`, the output as lines."""
    code, output = invoke(*arguments)
    return code, output.splitlines()


def one_error_line(*arguments: str) -> str:
    """Run a command that must fail with exit 1 and one line `error: ...`, never a traceback."""
    code, lines = invoke_lines(*arguments)
    assert code == 1, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in lines[0]
    return lines[0]
