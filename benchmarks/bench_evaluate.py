"""One `povrisk evaluate` run on the real Costa Rica survey (issue 3's budget: under 10 minutes on 2 cores).

Imports the shared train.csv with `povrisk import costa-rica` into a temporary folder, then times the
real CLI `povrisk evaluate --task poverty` (a subprocess, MLflow logging included, into a temporary
store) and reports its wall time, the child's peak memory and the headline figures of its JSON.
Emits a `skipped` line when the shared file is absent.

Run: .venv/bin/python benchmarks/bench_evaluate.py [--seeds 0] [--data PATH/train.csv]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import emit, seconds

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPOSITORY.parent / "shared" / "data" / "costa-rica" / "train.csv"
HEADLINE = ("macro_f1", "roc_auc", "pr_auc", "brier", "ece", "exclusion_error", "inclusion_error")


def povrisk(*arguments: str, cwd: Path) -> None:
    command = [str(Path(sys.executable).with_name("povrisk")), *arguments]
    environment = os.environ | {"NO_COLOR": "1"}
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=environment)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="0", help="seeds of the one evaluate run, comma-separated")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("POVRISK_COSTA_RICA", DEFAULT_DATA)))
    arguments = parser.parse_args()
    if not arguments.data.is_file():
        emit("evaluate_costa_rica", skipped=f"{arguments.data} is absent")
        return
    with tempfile.TemporaryDirectory(prefix="povrisk-bench-") as folder:
        work = Path(folder)
        import_s, _ = seconds(
            lambda: povrisk("import", "costa-rica", str(arguments.data), "--out", "survey", cwd=work)
        )
        evaluate_s, _ = seconds(
            lambda: povrisk(
                "evaluate",
                *("--data", "survey", "--task", "poverty", "--seed", arguments.seeds),
                *("--json", "evaluation.json"),
                cwd=work,
            )
        )
        report = json.loads((work / "evaluation.json").read_text())
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    emit(
        "evaluate_costa_rica",
        seeds=arguments.seeds,
        cores=os.cpu_count(),
        import_seconds=import_s,
        evaluate_seconds=evaluate_s,
        evaluate_minutes=evaluate_s / 60,
        child_peak_rss_mb=children.ru_maxrss / 1024,
        households=report["n_test"],
        **{f"model_{name}": report["model"].get(name) for name in HEADLINE},
        **{
            f"{baseline}_{name}": metrics.get(name)
            for baseline, metrics in report["baselines"].items()
            for name in ("macro_f1", "roc_auc", "exclusion_error")
        },
        reliability=[
            [row["bin"], row["n"], round(row["predicted"], 3), round(row["observed"], 3)]
            for row in report["reliability"]
        ],
    )


if __name__ == "__main__":
    main()
