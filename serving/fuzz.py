"""Contract fuzzing of a running service with schemathesis, against its own OpenAPI document.

`run_schemathesis` runs the schemathesis command line (all checks but two that cannot apply here:
`ignored_auth`, because the key travels in a header given to every request, and the 401/403 answers are
tested by the suite itself; `positive_data_acceptance`, because a schema-valid body can still be refused
for what it says, e.g. a what-if change of a member the household does not have) and returns how many
requests it generated and how many failed, with its output.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

EXCLUDED_CHECKS = ("ignored_auth", "positive_data_acceptance")
_GENERATED = re.compile(r"(\d+) generated")
_FAILED = re.compile(r"(\d+) unique failures?")


def run_schemathesis(
    base_url: str, api_key: str, examples: int, seed: int, timeout_s: float = 1800
) -> dict[str, Any]:
    """Run schemathesis against `base_url`/docs.json with `examples` per operation; parse its summary."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base_url}/docs.json",
        "--header",
        f"X-API-Key: {api_key}",
        "--max-examples",
        str(examples),
        "--seed",
        str(seed),
        "--warnings",
        "off",
        "--exclude-checks",
        ",".join(EXCLUDED_CHECKS),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    output = finished.stdout + finished.stderr
    generated = _GENERATED.search(output)
    failed = _FAILED.search(output)
    return {
        "generated": int(generated.group(1)) if generated else 0,
        "failures": int(failed.group(1)) if failed else (0 if finished.returncode == 0 else -1),
        "exit_code": finished.returncode,
        "output": output[-4000:],
    }
