"""Which waiting jobs a freed slot sends to admission: only those that fit the room
left in every scope they fall under, in their order."""

from __future__ import annotations

from jobyard.workers.admission import fitting


def quota(jobs=None, gpus=None, backends=()):
    return {"max_running_jobs": jobs, "max_gpus": gpus, "backends": list(backends)}


def job(name, backend="process", gpus=0):
    return {"_id": name, "backend": backend, "backend_details": {"num_gpus": gpus}}


def names(jobs):
    return [j["_id"] for j in jobs]


def test_a_gpu_limit_alone_sends_only_what_the_free_gpus_hold():
    held = [job("r1", gpus=2)]
    waiting = [job("a", gpus=1), job("b", gpus=2), job("c", gpus=1), job("d", gpus=1)]
    assert names(fitting(quota(gpus=4), held, waiting)) == ["a", "c"]


def test_a_target_limit_counts_only_its_targets_jobs():
    targets = [{"backend": "slurm:w1", "max_running_jobs": 1, "max_gpus": None}]
    held = [job("r1", backend="slurm:w1"), job("r2")]
    waiting = [job("a", backend="slurm:w1"), job("b"), job("c", backend="slurm:w1"), job("d")]
    assert names(fitting(quota(backends=targets), held, waiting)) == ["b", "d"]
    assert names(fitting(quota(jobs=3, backends=targets), held, waiting)) == ["b"]


def test_no_room_sends_nothing_and_no_limit_sends_everything():
    assert fitting(quota(jobs=1), [job("r1")], [job("a")]) == []
    assert names(fitting(quota(), [job("r1")], [job("a"), job("b")])) == ["a", "b"]
