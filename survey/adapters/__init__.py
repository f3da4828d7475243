"""Adapters: external surveys converted into the canonical schema of `survey.schema`.

Each adapter reads one external file format and returns an `ImportResult`: the canonical `Survey` and a
log of counts (rows read, households built, anomalies handled) so that nothing is dropped silently.
"""

from survey.adapters.costa_rica import CostaRicaFormatError, ImportResult, import_costa_rica

__all__ = ["CostaRicaFormatError", "ImportResult", "import_costa_rica"]
