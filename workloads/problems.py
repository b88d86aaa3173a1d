"""What can be wrong with a dataset: problems found row by row, and the error that stops a
dataset action.

A ``Problem`` names where it is (``digits.csv:12``, ``3/scan_07.png``) so the FAILURE event
and the reports point at the exact row or file; ``Problems`` counts every one by kind and
keeps the first ``MAX_LISTED`` for the reports.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# Kinds, named as the validate action's kpi reports their counts.
WRONG_COLUMN_COUNT = "wrong_column_count"
BAD_VALUE = "bad_value"
PIXEL_OUT_OF_RANGE = "pixel_out_of_range"
UNKNOWN_LABEL = "unknown_label"
HEADER = "header"
UNREADABLE_IMAGE = "unreadable_image"
EMPTY_CLASS = "empty_class"
DUPLICATES = "duplicates"
KINDS = (
    WRONG_COLUMN_COUNT,
    BAD_VALUE,
    PIXEL_OUT_OF_RANGE,
    UNKNOWN_LABEL,
    HEADER,
    UNREADABLE_IMAGE,
    EMPTY_CLASS,
    DUPLICATES,
)
MAX_LISTED = 100


class DatasetError(Exception):
    """The dataset cannot be used at all (missing, unreadable, or rows that convert rejects).

    The action fails (exit 1); ``errors`` lists the individual problems, first ones first.
    """

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors or [])


@dataclass(frozen=True)
class Problem:
    kind: str
    where: str  # "file:line", or a path relative to the dataset directory
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Problems:
    """Every problem counted by kind; the first ``MAX_LISTED`` kept in order."""

    listed: list[Problem] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, where: str, message: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown problem kind {kind!r}")
        self.counts[kind] += 1
        if len(self.listed) < MAX_LISTED:
            self.listed.append(Problem(kind, where, message))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def first(self, n: int) -> list[str]:
        return [str(p) for p in self.listed[:n]]

    def summary(self) -> str:
        """``3 problems (unknown_label 2, wrong_column_count 1)``."""
        kinds = ", ".join(f"{kind} {self.counts[kind]}" for kind in KINDS if self.counts[kind])
        plural = "" if self.total == 1 else "s"
        return f"{self.total} problem{plural} ({kinds})"
