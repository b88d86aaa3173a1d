"""Reading a dataset directory into rows: the training format, any digits CSV, or a folder
of images with one sub-folder per class.

Readers never stop at the first bad row: they keep the good rows and record every problem
(``problems.Problems``), so validate can report them all and convert can name the first.

* training: ``digits.csv.gz`` or ``digits.csv`` exactly as train reads it: no header, 64
  integer pixels 0..16 then the label, 65 columns.
* csv: 64 pixel columns and a label column (the one headed ``label``, ``class``, ``target``,
  ``digit`` or ``y``; else the last), header optional; pixels 0..16, or 0..255 when any
  value is above 16, rescaled to 0..16.
* image_folder: ``0/ .. 9/`` holding images in any format Pillow reads (see ``images``).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jobyard.workloads import images
from jobyard.workloads.data import CLASSES, DATA_FILE, IMAGE_SHAPE, N_FEATURES, PIXEL_MAX
from jobyard.workloads.images import IntArray
from jobyard.workloads.problems import (
    BAD_VALUE,
    DUPLICATES,
    EMPTY_CLASS,
    HEADER,
    PIXEL_OUT_OF_RANGE,
    UNKNOWN_LABEL,
    UNREADABLE_IMAGE,
    WRONG_COLUMN_COUNT,
    DatasetError,
    Problem,
    Problems,
)

TRAINING_FILES = (DATA_FILE, "digits.csv")
CSV_SUFFIXES = (".csv", ".csv.gz")
LABEL_NAMES = ("label", "class", "target", "digit", "y")
N_COLUMNS = N_FEATURES + 1
BYTE_MAX = 255
CLASS_NAMES = {str(c): c for c in CLASSES}

Progress = Callable[[int, int], None]  # (done, total); may raise to stop the action


@dataclass
class Table:
    """The good rows of one dataset (pixels 0..16) and what was wrong with the others."""

    source: Path
    input_format: str  # training | csv | image_folder
    pixels: IntArray  # (n, 64)
    labels: IntArray  # (n,)
    rows_read: int  # data rows (or image files) seen, good or bad
    problems: Problems
    pixel_range: int | None = None  # csv: the detected 16 or 255
    header: bool = False
    inverted: int = 0  # images (rows) inverted
    skipped: list[str] = field(default_factory=list)  # files that are not images

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(CLASSES))
        return {str(c): int(counts[c]) for c in CLASSES}


def _csv_files(folder: Path) -> list[Path]:
    named = [folder / name for name in TRAINING_FILES if (folder / name).is_file()]
    if named:
        return named[:1]  # digits.csv.gz wins over digits.csv, as train reads them
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name.lower().endswith(CSV_SUFFIXES) and not p.name.startswith(".")
    )


def _has_folders(folder: Path) -> bool:
    return any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir())


def locate(folder: Path, input_format: str) -> tuple[str, Path]:
    """(training | csv | image_folder, the file or folder to read) for ``input_format``
    (auto, training, csv or image_folder); auto prefers a CSV file to class folders."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: the dataset directory does not exist")
    if input_format in ("auto", "training"):
        for name in TRAINING_FILES:
            if (folder / name).is_file():
                return "training", folder / name
        if input_format == "training":
            raise DatasetError(f"{folder}: no {' or '.join(TRAINING_FILES)} (the training format)")
    if input_format in ("auto", "csv"):
        found = _csv_files(folder)
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise DatasetError(f"{folder}: {len(found)} CSV files ({names}); expected one")
        if found:
            return "csv", found[0]
        if input_format == "csv":
            raise DatasetError(f"{folder}: no *.csv or *.csv.gz file")
    if _has_folders(folder):
        return "image_folder", folder
    expected = {
        "image_folder": "one sub-folder of images per class, named 0..9",
        "auto": "digits.csv.gz, one *.csv file, or one sub-folder of images per class (0..9)",
    }[input_format]
    raise DatasetError(f"{folder}: no dataset found: expected {expected}")


def read(input_format: str, path: Path, invert: bool | str, progress: Progress) -> Table:
    """Read what ``locate`` found; ``invert`` applies to images only (see ``invert_rows``)."""
    if input_format == "image_folder":
        return read_image_folder(path, invert, progress)
    table = read_csv(path, strict=input_format == "training")
    progress(table.rows_read, table.rows_read)
    return table


def _text(path: Path) -> str:
    try:
        raw = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            raw = gzip.decompress(raw)
        return raw.decode("utf-8-sig")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc


def _number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _label(cell: str) -> int | None:
    value = _number(cell)
    if value is None or not value.is_integer() or int(value) not in CLASSES:
        return None
    return int(value)


@dataclass(frozen=True)
class _Row:
    line: int
    pixels: list[float]
    label: int


Found = list[tuple[int, Problem]]  # (line, problem): sorted by line before they are counted


def _where(path: Path, line: int) -> str:
    return f"{path.name}:{line}"


def _header(path: Path, line: int, names: list[str], strict: bool, found: Found) -> int:
    """The label column's index: the one named like a label, else the last."""
    lowered = [name.strip().lower() for name in names]
    if strict:
        found.append(
            (
                line,
                Problem(HEADER, _where(path, line), "a header row: the training format has none"),
            )
        )
    if len(names) != N_COLUMNS:
        message = f"the header has {len(names)} columns, expected {N_COLUMNS}"
        found.append((line, Problem(WRONG_COLUMN_COUNT, _where(path, line), message)))
    return next((i for i, n in enumerate(lowered) if n in LABEL_NAMES), len(names) - 1)


def _column(index: int, label_col: int) -> int:
    """1-based column number in the file of pixel ``index``."""
    return index + (index >= label_col) + 1


def _parse_row(
    path: Path, line: int, cells: list[str], label_col: int, found: Found
) -> _Row | None:
    where = _where(path, line)
    if len(cells) != N_COLUMNS:
        message = f"{len(cells)} columns, expected {N_COLUMNS} (64 pixels and a label)"
        found.append((line, Problem(WRONG_COLUMN_COUNT, where, message)))
        return None
    label = _label(cells[label_col])
    if label is None:
        message = f"label {cells[label_col].strip()!r} is not a class (0..9)"
        found.append((line, Problem(UNKNOWN_LABEL, where, message)))
        return None
    pixel_cells = cells[:label_col] + cells[label_col + 1 :]
    values = [_number(cell) for cell in pixel_cells]
    bad = next((i for i, v in enumerate(values) if v is None), None)
    if bad is not None:
        message = f"column {_column(bad, label_col)}: {pixel_cells[bad].strip()!r} is not a number"
        found.append((line, Problem(BAD_VALUE, where, message)))
        return None
    return _Row(line, [v for v in values if v is not None], label)


def read_csv(path: Path, *, strict: bool) -> Table:
    """Rows of a digits CSV; ``strict``: the training format (no header, integers 0..16)."""
    reader = csv.reader(io.StringIO(_text(path)))
    rows = [(line, cells) for line, cells in enumerate(reader, 1) if any(c.strip() for c in cells)]
    found: Found = []
    label_col = N_FEATURES
    header = bool(rows) and any(_number(cell) is None for cell in rows[0][1])
    if header:
        line, names = rows.pop(0)
        label_col = _header(path, line, names, strict, found)
    parsed = [_parse_row(path, line, cells, label_col, found) for line, cells in rows]
    good = [row for row in parsed if row is not None]
    pixels, labels, pixel_range = _scaled(path, good, strict, label_col, found)
    problems = Problems()
    for _, problem in sorted(found, key=lambda item: item[0]):
        problems.add(problem.kind, problem.where, problem.message)
    fmt = "training" if strict else "csv"
    return Table(path, fmt, pixels, labels, len(rows), problems, pixel_range, header=header)


def _scaled(
    path: Path, rows: list[_Row], strict: bool, label_col: int, found: Found
) -> tuple[IntArray, IntArray, int]:
    """Range-check the parsed rows and scale them to integers 0..16: 0..255 when any value
    is above 16 (not in the training format, whose pixels are 0..16 integers)."""
    values = np.array([row.pixels for row in rows], dtype=np.float64).reshape(-1, N_FEATURES)
    labels = np.array([row.label for row in rows], dtype=np.int64)
    top = int(PIXEL_MAX) if strict or not values.size or values.max() <= PIXEL_MAX else BYTE_MAX
    outside = (values < 0) | (values > top)
    fraction = values != np.rint(values) if strict else np.zeros_like(outside)
    good = np.ones(len(rows), dtype=bool)
    for index in np.flatnonzero(outside.any(axis=1) | fraction.any(axis=1)):
        good[index] = False
        bad = int(np.argmax(outside[index] | fraction[index]))
        where = _where(path, rows[index].line)
        text = f"column {_column(bad, label_col)}: {values[index, bad]:g}"
        if outside[index, bad]:
            problem = Problem(PIXEL_OUT_OF_RANGE, where, f"{text} is outside 0..{top}")
        else:
            problem = Problem(
                BAD_VALUE, where, f"{text} is not an integer (the training format's are)"
            )
        found.append((rows[index].line, problem))
    scaled = values[good] * (PIXEL_MAX / top)
    return np.rint(scaled).astype(np.int64), labels[good], top


def _image_files(folder: Path, problems: Problems) -> list[Path]:
    found: list[Path] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if sub.name not in CLASS_NAMES:
            message = f"folder {sub.name!r} is not a class: class folders are named 0..9"
            problems.add(UNKNOWN_LABEL, f"{sub.name}/", message)
            continue
        for path in sorted(sub.rglob("*")):
            hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
            if path.is_file() and not hidden:
                found.append(path)
    return found


def read_image_folder(folder: Path, invert: bool | str, progress: Progress) -> Table:
    """One row per image file under ``0/`` .. ``9/`` (nested folders too, hidden ones not)."""
    image = images.pillow(folder)
    suffixes = images.extensions(image)
    problems = Problems()
    files = _image_files(folder, problems)
    skipped = [p.relative_to(folder).as_posix() for p in files if p.suffix.lower() not in suffixes]
    files = [p for p in files if p.suffix.lower() in suffixes]
    rows: list[IntArray] = []
    labels: list[int] = []
    inverted = 0
    for done, path in enumerate(files, 1):
        where = path.relative_to(folder).as_posix()
        try:
            pixels, flipped = images.load(image, path, invert)
        except images.UnreadableImage as exc:
            problems.add(UNREADABLE_IMAGE, where, str(exc))
        else:
            rows.append(pixels)
            labels.append(CLASS_NAMES[path.relative_to(folder).parts[0]])
            inverted += flipped
        progress(done, len(files))
    pixels_array = np.array(rows, dtype=np.int64).reshape(-1, N_FEATURES)
    return Table(
        folder,
        "image_folder",
        pixels_array,
        np.array(labels, dtype=np.int64),
        len(files),
        problems,
        inverted=inverted,
        skipped=skipped,
    )


def invert_rows(table: Table, invert: bool | str) -> None:
    """Invert CSV rows in place: all (``True``), none, or those whose border is light."""
    images_2d = table.pixels.reshape(-1, *IMAGE_SHAPE).astype(np.float64)
    if invert == "auto":
        flip = np.array([images.light_border(img, PIXEL_MAX) for img in images_2d], dtype=bool)
    else:
        flip = np.full(len(table.labels), bool(invert))
    table.pixels[flip] = int(PIXEL_MAX) - table.pixels[flip]
    table.inverted = int(flip.sum())


def duplicates(table: Table) -> int:
    """Rows (pixels and label) that repeat an earlier row."""
    if not len(table.labels):
        return 0
    rows = np.column_stack([table.pixels, table.labels])
    return len(rows) - len(np.unique(rows, axis=0))


def check_dataset(table: Table, *, allow_duplicates: bool) -> int:
    """Add the whole-dataset problems (empty classes, duplicates); returns the duplicates."""
    where = table.source.name or str(table.source)
    for cls, count in table.class_counts().items():
        if count == 0:
            table.problems.add(EMPTY_CLASS, where, f"class {cls} has no rows")
    repeated = duplicates(table)
    if repeated and not allow_duplicates:
        table.problems.add(DUPLICATES, where, f"{repeated} rows repeat an earlier row")
    return repeated
