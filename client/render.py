"""Terminal output with rich: the live progress bars of ``wait(progress=True)`` and
``jobyard jobs watch``, transfer bars, and tables of jobs, workspaces and datasets."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from jobyard.client.progress import Progress as JobProgress

if TYPE_CHECKING:
    from jobyard.client.api import Job

STATUS_STYLE = {
    "Done": "green",
    "Running": "cyan",
    "Pending": "yellow",
    "Error": "red",
    "Canceled": "magenta",
    "Paused": "blue",
}


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False)


@contextmanager
def live_progress(
    jobs: Sequence[Job], out: Console | None = None
) -> Iterator[Callable[[Job, JobProgress], None]]:
    """One bar per job: name, status, epoch n/N, then loss, accuracy and ETA."""
    bars = Progress(
        TextColumn("[bold]{task.fields[name]}"),
        TextColumn("{task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[summary]}"),
        console=out or console(),
        transient=False,
    )
    tasks: dict[str, TaskID] = {}
    with bars:
        for job in jobs:
            name = str(job.doc.get("name") or job.id[:8])
            tasks[job.id] = bars.add_task(name, total=None, name=name, status="", summary="")

        def update(job: Job, seen: JobProgress) -> None:
            style = STATUS_STYLE.get(seen.status, "white")
            bars.update(
                tasks[job.id],
                completed=seen.epoch,
                total=seen.max_epoch,
                status=f"[{style}]{seen.status}[/]",
                summary=seen.summary(),
            )

        yield update


@contextmanager
def transfer_bar(
    label: str, out: Console | None = None
) -> Iterator[Callable[[int, int | None], None]]:
    bars = Progress(
        TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=out
    )
    with bars:
        task = bars.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bars.update(task, completed=done, total=total)

        yield update


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], title: str = "") -> Table:
    """Rows of API documents as a table of the given fields (``job_details.epoch`` too)."""
    shown = Table(title=title or None, show_lines=False)
    for column in columns:
        shown.add_column(column.rsplit(".", 1)[-1])
    for row in rows:
        cells = []
        for column in columns:
            value: Any = row
            for part in column.split("."):
                value = value.get(part) if isinstance(value, Mapping) else None
            text = "" if value is None else str(value)
            style = STATUS_STYLE.get(text) if column == "status" else None
            cells.append(f"[{style}]{text}[/]" if style else text)
        shown.add_row(*cells)
    return shown
