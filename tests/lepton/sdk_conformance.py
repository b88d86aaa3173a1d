"""Drives the Lepton double with the real ``leptonai`` SDK; run by test_sdk_conformance.

Runs under an interpreter that has ``leptonai`` (which need not have jobyard): it reads
``{"ours": body, "run": body, "long": body}`` (bodies jobyard rendered) on stdin, takes
``URL TOKEN WORKSPACE`` as arguments, and prints what it observed as one JSON object.
"""

from __future__ import annotations

import json
import sys
import time

from leptonai.api.v2.client import APIClient
from leptonai.api.v2.types.job import LeptonJob


def wait(client, job_id, states, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job.get(job_id)
        if job.status and job.status.state.value in states:
            return job
        time.sleep(0.1)
    raise TimeoutError(job_id)


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def main() -> None:
    url, token, workspace = sys.argv[1:4]
    bodies = json.load(sys.stdin)
    out: dict = {}
    parsed = LeptonJob.model_validate(bodies["ours"])  # jobyard's body under the SDK's model
    out["parsed"] = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    client = APIClient(workspace_id=workspace, auth_token=token, url=url)

    run = LeptonJob.model_validate(bodies["run"])
    job_id = run.metadata.id_
    out["created_state"] = client.job.create(run).status.state.value
    out["final_state"] = wait(client, job_id, ("Completed", "Failed", "Stopped")).status.state.value
    replicas = client.job.get_replicas(job_id)
    out["replicas"] = [r.metadata.id_ for r in replicas]
    out["log"] = "".join(client.job.get_log(job_id, replicas[0], timeout=5))
    out["events"] = [e.reason for e in client.job.get_events(job_id)]

    long = LeptonJob.model_validate(bodies["long"])
    client.job.create(long)
    wait(client, long.metadata.id_, ("Running",))
    out["listed"] = sorted(j.metadata.id_ for j in client.job.list_all(query="managed-by=jobyard"))
    client.job.update(long.metadata.id_, spec={"spec": {"stopped": True}})  # `lep job stop`
    out["stopped_state"] = wait(client, long.metadata.id_, ("Stopped",)).status.state.value
    client.job.delete(long.metadata.id_)
    try:
        client.job.get(long.metadata.id_)
        out["get_deleted"] = "found"
    except Exception as e:  # the SDK raises its own error types
        out["get_deleted"] = type(e).__name__
    groups = client.nodegroup.list_all()  # `lep node resource-shape --purpose job`
    out["node_groups"] = [dump(g) for g in groups]
    out["shapes"] = {
        g.metadata.id_: [
            dump(s) for s in client.shapes.list_shapes(node_group=g.metadata.id_, purpose="job")
        ]
        for g in groups
    }
    try:
        APIClient(workspace_id=workspace, auth_token="wrong", url=url).job.list_all()
        out["wrong_token"] = "accepted"
    except Exception as e:
        out["wrong_token"] = f"{type(e).__name__}: {e}"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
