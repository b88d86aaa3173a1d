"""Golden files pin the batch script byte for byte: directives, quoting, exec line.

Regenerate after an intended change with ``JY_UPDATE_GOLDEN=1 pytest tests/slurm``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from jobyard.backends.base import Handle, RunSpec
from jobyard.backends.errors import SubmitRejected
from jobyard.backends.slurm.sbatch import render_sbatch, time_limit_minutes

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "slurm"
PY = "/opt/py/bin/python3"


def _spec(**changes: object) -> RunSpec:
    base: dict[str, object] = dict(
        job_id="6f1c2a9e-0d4b-4c1e-9a7e-1b2c3d4e5f60",
        run=1,
        action="train",
        command=["python", "-m", "jobyard.workloads.classifier"],
        specs={"train": {"num_epochs": 2}},
        timeout_seconds=3600,
    )
    base.update(changes)
    return RunSpec(**base)  # type: ignore[arg-type]


CASES: dict[str, tuple[RunSpec, str | None]] = {
    "train.sh": (_spec(), "debug"),
    "train_gpus.sh": (_spec(options={"num_gpus": 2, "gpu_type": "a100"}), "gpu"),
    "evaluate_parent_env.sh": (
        _spec(
            run=3,
            action="evaluate",
            timeout_seconds=61,
            command=["python", "-c", "print('it''s $HOME')", "two words", ""],
            env={
                "PYTHONPATH": "/srv/jobyard",
                "QUOTED": 'a\'b "c" $(rm -rf /) `x` \\n',
                "JOBYARD_SECRET": "never",
                "JY_RUN": "stale",
            },
            parent=Handle("slurm", "jy-parent-r1", {"results_dir": "/scratch/jobs/parent/results"}),
        ),
        None,
    ),
    # a model server: no --time, and a port picked on the node, written down for jobyard
    "serve.sh": (
        _spec(
            action="serve",
            command=["python", "-m", "jobyard.workloads.server"],
            env={"JY_SERVE_HOST": "0.0.0.0", "JY_SERVE_PORT": "0"},
        ),
        "debug",
    ),
}


def _render(spec: RunSpec, partition: str | None) -> str:
    run_dir = f"/scratch/jobs/{spec.job_id}/run-{spec.run}"
    results_dir = f"/scratch/jobs/{spec.job_id}/results/"
    return render_sbatch(
        spec,
        results_dir=results_dir,
        run_dir=run_dir,
        partition=partition,
        python=PY,
        grace_seconds=30,
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_matches_golden(name: str) -> None:
    spec, partition = CASES[name]
    text = _render(spec, partition)
    path = GOLDEN / name
    if os.environ.get("JY_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_is_valid_bash(name: str) -> None:
    subprocess.run(["bash", "-n", str(GOLDEN / name)], check=True)


def test_exports_survive_the_shell_unchanged(tmp_path: Path) -> None:
    """What bash sees after the quoting is exactly the value given."""
    spec, _ = CASES["evaluate_parent_env.sh"]
    script = _render(spec, None).replace("exec ", "exec env -0 #", 1)
    (tmp_path / "s.sh").write_text(script)
    out = subprocess.run(["bash", str(tmp_path / "s.sh")], capture_output=True, check=True)
    env = dict(item.split("=", 1) for item in out.stdout.decode().split("\0") if "=" in item)
    assert env["QUOTED"] == 'a\'b "c" $(rm -rf /) `x` \\n'
    assert env["JY_RUN"] == "3"
    assert env["JY_PARENT_RESULTS_DIR"] == "/scratch/jobs/parent/results"
    assert "JOBYARD_SECRET" not in env


@pytest.mark.parametrize(
    ("seconds", "minutes"), [(0, 1), (1, 1), (60, 1), (61, 2), (3600, 60), (3601, 61)]
)
def test_time_limit_rounds_up_to_whole_minutes(seconds: int, minutes: int) -> None:
    assert time_limit_minutes(seconds) == minutes


def test_time_limit_is_the_timeout_plus_the_grace_period() -> None:
    """jobyard stops the run at timeout_minutes itself; SLURM's limit is the backstop."""
    assert "#SBATCH --time=61\n" in _render(_spec(timeout_seconds=3600), None)


def test_gpus_become_gres() -> None:
    assert "#SBATCH --gres=gpu:4\n" in _render(_spec(options={"num_gpus": 4}), None)
    assert "--gres" not in _render(_spec(options={"num_gpus": 0}), None)


def test_empty_command_is_rejected() -> None:
    with pytest.raises(SubmitRejected, match="empty command"):
        _render(_spec(command=[]), None)


def test_parent_without_results_dir_is_rejected() -> None:
    with pytest.raises(SubmitRejected, match="no results_dir"):
        _render(_spec(parent=Handle("slurm", "jy-p-r1", {})), None)


@pytest.mark.parametrize(
    "changes", [{"job_id": "has space"}, {"job_id": "semi;colon"}, {"job_id": "new\nline"}]
)
def test_names_sbatch_would_mangle_are_rejected(changes: dict[str, object]) -> None:
    with pytest.raises(SubmitRejected, match="sbatch mangles"):
        _render(_spec(**changes), "debug")


def test_bad_env_name_is_rejected() -> None:
    with pytest.raises(SubmitRejected, match="not an environment variable name"):
        _render(_spec(env={"A-B": "1"}), None)


def test_non_python_command_is_kept() -> None:
    text = _render(_spec(command=["/bin/sh", "-c", "exit 3"]), None)
    assert text.endswith("exec /bin/sh -c 'exit 3'\n")
