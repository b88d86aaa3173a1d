"""``jobyard up`` end to end: the README walkthrough, admin beside it, restart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobyard import embedded
from tests.e2e.conftest import readme_block, run_bash, start_up

pytestmark = pytest.mark.e2e


def test_readme_walkthrough_runs_as_written(jobyard_up):
    out = run_bash(readme_block("walkthrough"), jobyard_up.env())
    lines = out.strip().splitlines()
    workspace_id = lines[0]
    assert len(workspace_id) == 36, out
    assert '"renamed"' in out
    assert '"path": "my_workspace"' in out  # a local workspace: nothing to mask


def test_readme_jobs_walkthrough_trains_evaluates_exports_and_cancels(jobyard_up):
    script = readme_block("walkthrough") + readme_block("jobs-walkthrough")
    out = run_bash(script, jobyard_up.env(), timeout=240)
    assert "status: Done" in out, out
    assert "Epoch 5/5" in out
    assert "evaluate: Done" in out and "export: Done" in out
    assert '"metric":"accuracy"' in out
    assert out.strip().splitlines()[-1] in {"Canceling", "Canceled"}


def test_first_start_submits_the_main_job_and_it_finishes(jobyard_up):
    text = "".join(jobyard_up.output)
    assert "submitted the reference train job" in text
    job_id = text.split("submitted the reference train job ")[1].split(";")[0]
    script = f"""
      BODY='{{"ngc_key": "'$NGC_API_KEY'", "ngc_org_name": "demo"}}'
      TOKEN=$(curl -sf -X POST $BASE_URL/login -d "$BODY" | jq -r .token)
      for i in $(seq 60); do
        S=$(curl -sf $BASE_URL/orgs/demo/jobs/{job_id} -H "Authorization: Bearer $TOKEN" \
            | jq -r .status)
        [ "$S" = Done ] && break; sleep 1
      done
      echo $S
    """
    assert run_bash(script, jobyard_up.env()).strip() == "Done"


def test_admin_beside_up_and_a_restart_keeps_everything(jobyard_up):
    up = jobyard_up
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobyard.cli",
            "admin",
            "create-key",
            "--org",
            "team2",
            "--user",
            "bob",
        ],
        env=up.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    script = """
      BODY='{"ngc_key": "'$NGC_API_KEY'", "ngc_org_name": "'$NGC_ORG_NAME'"}'
      TOKEN=$(curl -sf -X POST $BASE_URL/login -d "$BODY" | jq -r .token)
      curl -sf -X POST $BASE_URL/orgs/$NGC_ORG_NAME/workspaces -H "Authorization: Bearer $TOKEN" \
          -d '{"name": "kept", "cloud_type": "local"}' > /dev/null
      curl -sf $BASE_URL/orgs/$NGC_ORG_NAME/workspaces -H "Authorization: Bearer $TOKEN"
    """
    listed = json.loads(run_bash(script, up.env(org="team2", key=key)))
    assert [w["name"] for w in listed["workspaces"]] == ["kept"]

    assert up.stop() == 0
    again = start_up(up.data_dir, embedded.free_port())
    try:
        assert again.api_key is None  # the demo key is shown on first start only
        relisted = json.loads(
            run_bash(script.replace('"kept"', '"second"'), again.env(org="team2", key=key))
        )
        assert sorted(w["name"] for w in relisted["workspaces"]) == ["kept", "second"]
        old_demo_key = up.api_key
        assert old_demo_key
        run_bash(readme_block("walkthrough"), again.env(key=old_demo_key))
    finally:
        assert again.stop() == 0


def test_up_refuses_a_second_instance_on_the_same_data_dir(jobyard_up):
    second = subprocess.run(
        [sys.executable, "-m", "jobyard.cli", "up", "--port", str(embedded.free_port())],
        env=jobyard_up.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert "already running" in second.stderr


def test_readme_own_code_section_runs_as_written(jobyard_up, tmp_path):
    env = jobyard_up.env()
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # jobyard itself
    script = readme_block("walkthrough") + readme_block("own-code")
    out = run_bash(script, env, timeout=180, cwd=tmp_path)
    assert "my_net: Done" in out, out
    lines = out.splitlines()
    assert any(line.startswith("added: my_net/my_first_net id ") for line in lines), out
    assert [line for line in lines if line.startswith("Epoch ")] == [
        "Epoch 1/4 - loss: 0.7",
        "Epoch 2/4 - loss: 0.49",
        "Epoch 3/4 - loss: 0.343",
        "Epoch 4/4 - loss: 0.2401",
    ]
    assert lines[-1] == json.dumps(
        [f"model_epoch_{e:03d}.pt" for e in range(1, 5)], separators=(",", ":")
    )


def test_readme_templates_and_list_queries_run_as_written(jobyard_up, tmp_path):
    script = readme_block("walkthrough") + readme_block("templates") + readme_block("list-queries")
    out = run_bash(script, jobyard_up.env(), cwd=tmp_path)
    objects = [json.loads(chunk) for chunk in _json_values(out)]
    made = next(o for o in objects if isinstance(o, dict) and "runnable" in o and "epochs" in o)
    assert made["runnable"] == {"value": True, "reasons": []} and made["epochs"] == 20
    job = next(o for o in objects if isinstance(o, dict) and "template_version" in o)
    assert job["template_id"] == made["id"] and job["template_version"] == 1, out
    assert job["epochs"] == 20
    old = next(o for o in objects if isinstance(o, dict) and o.get("meta", {}).get("version") == 1)
    assert old["spec"]["timeout_minutes"] == 120  # version 1, before the PATCH cleared it
    assert {"count": 1} in objects
    assert out.rstrip().endswith(
        "operator =@ does not apply to date field created_on; use ==, !=, <=, >="
    )


def _json_values(text: str) -> list[str]:
    """The JSON documents in a script's output, one after another."""
    decoder = json.JSONDecoder()
    found, i = [], 0
    while i < len(text):
        if text[i] in "{[":
            try:
                _, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                i += 1
                continue
            found.append(text[i:end])
            i = end
        else:
            i += 1
    return found
