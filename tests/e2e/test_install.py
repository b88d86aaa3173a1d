"""jobyard as a user installs it: a wheel in a fresh virtualenv, outside the source tree.

The wheel must put one import name into site-packages (``jobyard``), so it can sit next
to another project's ``api`` or ``store``; and ``jobyard up`` from that install must run
the main job with nothing from the repository. The wheel is built offline and installed
without its dependencies, which come from the test environment's own site-packages.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from jobyard import embedded
from tests.e2e.conftest import ROOT, run_bash

pytestmark = pytest.mark.e2e
GENERIC = ("api", "backends", "schemas", "store", "workers", "workloads")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # a copy of the tree as it is now (links kept): setuptools writes build/ where it builds
    source = tmp_path_factory.mktemp("source") / "jobyard"
    skip = shutil.ignore_patterns(".venv*", ".git", "build", "*.egg-info", ".jobyard", "results")
    shutil.copytree(ROOT, source, symlinks=True, ignore=skip)
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (found,) = out.glob("jobyard-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True)
    target = next((home / "lib").glob("python3*")) / "site-packages"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    # the dependencies, without this environment's editable install of jobyard: a path in
    # a .pth file is added as it is, the .pth files inside it are not run
    (target / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return home


def test_the_wheel_holds_one_top_level_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"jobyard"}
    assert "jobyard/workloads/data/digits.csv.gz" in names
    assert "jobyard/api/errors.py" in names and "jobyard/store/jobs.py" in names


def test_generic_names_are_not_importable_from_the_install(venv, tmp_path):
    probe = "import importlib.util as u, sys; print([n for n in sys.argv[1:] if u.find_spec(n)])"
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe, *GENERIC],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "[]"
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import jobyard.api; print(jobyard.api.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout


def test_jobyard_up_from_the_install_runs_the_main_job(venv, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    env["JOBYARD_DATA_DIR"] = str(tmp_path / "data")
    # the embedded servers' console scripts live beside this environment's interpreter
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    port = embedded.free_port()
    proc = subprocess.Popen(
        [str(venv / "bin" / "python"), "-m", "jobyard.cli", "up", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Stop:"):
                break
        text = "".join(lines)
        assert "submitted the reference train job" in text, text
        job_id = text.split("submitted the reference train job ")[1].split(";")[0]
        key = text.split("NGC_API_KEY=")[1].split()[0]
        script = f"""
          B=http://127.0.0.1:{port}/api/v2
          T=$(curl -sf -X POST $B/login -d '{{"ngc_key": "{key}", "ngc_org_name": "demo"}}' \
              | jq -r .token)
          for i in $(seq 90); do
            S=$(curl -sf $B/orgs/demo/jobs/{job_id} -H "Authorization: Bearer $T" | jq -r .status)
            [ "$S" = Done ] || [ "$S" = Error ] && break; sleep 1
          done
          echo $S
        """
        assert run_bash(script, env).strip() == "Done"
    finally:
        proc.terminate()
        proc.wait(60)
        if proc.stdout:
            proc.stdout.close()
