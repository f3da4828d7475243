"""The least a BentoML endpoint can do: echo a small JSON body. `bench_scoring.py` serves it the same way
as the scoring service (loopback, the same `POVRISK_WORKERS`) to measure how many requests per second
BentoML's HTTP stack itself carries on this machine, i.e. the ceiling for any one-household-per-request
endpoint."""

from __future__ import annotations

import bentoml

from serving.runtime import service_workers


@bentoml.service(name="floor", workers=service_workers())
class Floor:
    @bentoml.api
    def echo(self, value: int) -> dict[str, int]:
        return {"value": value}
