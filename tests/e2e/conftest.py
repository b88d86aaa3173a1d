"""Run the real ``jobyard up`` in a temp data dir and drive it over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobyard import embedded

ROOT = Path(__file__).parents[2]


@dataclass
class Up:
    proc: subprocess.Popen[str]
    data_dir: Path
    base_url: str
    api_key: str | None
    output: list[str]

    def env(self, org: str = "demo", key: str | None = None) -> dict[str, str]:
        return {
            **os.environ,
            "BASE_URL": self.base_url,
            "NGC_ORG_NAME": org,
            "NGC_API_KEY": key or self.api_key or "",
            "JOBYARD_DATA_DIR": str(self.data_dir),
        }

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        if self.proc.stdout:
            self.proc.stdout.close()
        return code


def start_up(data_dir: Path, port: int, extra_env: dict[str, str] | None = None) -> Up:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    env["JOBYARD_DATA_DIR"] = str(data_dir)
    env.update(extra_env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobyard.cli", "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + 90
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("jobyard up exited:\n" + "".join(output))
        output.append(line)
        if line.startswith("Stop:"):
            break
    text = "".join(output)
    base = re.search(r"jobyard is up: (\S+)", text)
    key = re.search(r"NGC_API_KEY=(\S+)", text)
    assert base, text
    return Up(proc, data_dir, base.group(1), key.group(1) if key else None, output)


@pytest.fixture
def jobyard_up(tmp_path: Path) -> Iterator[Up]:
    up = start_up(tmp_path / "data", embedded.free_port())
    yield up
    up.stop()


def readme_block(name: str) -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(
        rf"<!-- {name}:start -->\s*```bash\n(.*?)```\s*<!-- {name}:end -->", readme, re.S
    )
    assert match, f"README.md has no {name} block"
    return match.group(1)


def run_bash(
    script: str, env: dict[str, str], timeout: float = 120, cwd: Path | None = None
) -> str:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
