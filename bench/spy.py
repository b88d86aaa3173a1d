"""py-spy sampling of the real API and worker processes while a phase runs,
summarised as text: where the samples were (inclusive and self), per function."""

from __future__ import annotations

import collections
import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

_LINE = re.compile(r"\(([^()]*?):\d+\)$")  # "f (path:12)" -> "f (path)": one row per function


def _py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def recording(pids: Sequence[int], out: Path, rate: int = 50, seconds: int = 20) -> Iterator[None]:
    """Sample each of ``pids`` (no children: py-spy following every launcher it
    sees costs more than the phase) for at most ``seconds``, then write ``out``
    (collapsed stacks of all of them) and ``out.with_suffix('.txt')`` (summary).
    Does nothing when py-spy is missing or may not attach (no ptrace)."""
    binary = _py_spy()
    if binary is None or not pids:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = [out.with_suffix(f".{pid}.part") for pid in pids]
    procs = [
        subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--nonblocking",
                "--rate",
                str(rate),
                "--duration",
                str(seconds),
                "--format",
                "raw",
                "--output",
                str(part),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid, part in zip(pids, parts, strict=True)
    ]
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    folded = ""
    for part in parts:
        if part.exists():
            folded += part.read_text()
            part.unlink()
    out.write_text(folded)
    out.with_suffix(".txt").write_text(summarize(folded))


def summarize(folded: str, top: int = 40) -> str:
    """Top functions by inclusive and by self samples from py-spy's raw output."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_LINE.sub(r"(\1)", f) for f in stack.split(";") if not f.startswith("process ")]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count
    lines = [f"{total} samples (active only)", "", "inclusive %  function"]
    lines += [f"{100 * n / max(total, 1):10.1f}  {f}" for f, n in inclusive.most_common(top)]
    lines += ["", "self %  function"]
    lines += [f"{100 * n / max(total, 1):6.1f}  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines) + "\n"
