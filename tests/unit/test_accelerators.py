"""jobs:gpu_types without a network: each backend's parser against the output its system
prints, the one-minute cache on a clock the tests move, and how an org's answer is put
together from its backends when some of them cannot be asked."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from jobyard.api import accelerators
from jobyard.api.cache import TtlCache
from jobyard.backends.base import Accelerator
from jobyard.backends.errors import BackendUnavailable, SubmitRejected, WorkspaceMissing
from jobyard.backends.kubernetes.nodes import gpu_name, node_accelerators
from jobyard.backends.lepton.shapes import group_accelerators, shape_offer
from jobyard.backends.slurm.parse import gres_gpus, parse_sinfo
from jobyard.schemas.workspace import WorkspaceConfig
from jobyard.store.errors import Unavailable

DATA = Path(__file__).resolve().parents[1] / "data"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- Kubernetes ----------------------------------------------------------------------------


def test_nodes_golden_one_entry_per_schedulable_node():
    nodes = json.loads((DATA / "kubernetes" / "nodes.json").read_text())["items"]
    assert node_accelerators(nodes, "nvidia.com/gpu") == [
        Accelerator("cpu", 0, "cpu-0"),
        Accelerator("a100-sxm4-80gb", 8, "gpu-a100-0"),
        Accelerator("cpu", 0, "gpu-driver-down-0"),  # labelled, but nothing allocatable
        Accelerator("t4", 1, "gpu-t4-0"),
        Accelerator("gpu", 2, "gpu-unlabelled-0"),  # the cordoned H100 node is left out
    ]


def test_nodes_count_the_configured_gpu_resource():
    node = {
        "metadata": {
            "name": "mig-0",
            "labels": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"},
        },
        "status": {"allocatable": {"nvidia.com/gpu": "0", "nvidia.com/mig-1g.5gb": "7"}},
    }
    assert node_accelerators([node], "nvidia.com/mig-1g.5gb") == [
        Accelerator("a100-sxm4-40gb", 7, "mig-0")
    ]


@pytest.mark.parametrize(
    ("product", "name"),
    [
        ("NVIDIA-A100-SXM4-80GB", "a100-sxm4-80gb"),
        ("NVIDIA-H100-80GB-HBM3", "h100-80gb-hbm3"),
        ("Tesla-V100-SXM2-16GB", "v100-sxm2-16gb"),
        ("NVIDIA-Tesla-T4", "t4"),
        ("NVIDIA-GeForce-RTX-4090", "geforce-rtx-4090"),
        ("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "a100-sxm4-40gb-mig-1g.5gb"),
        ("", ""),
    ],
)
def test_gpu_product_labels_become_short_names(product, name):
    assert gpu_name(product) == name


# -- SLURM ---------------------------------------------------------------------------------


def test_sinfo_golden_per_partition_typed_untyped_and_null():
    found = parse_sinfo((DATA / "slurm" / "sinfo_gres.txt").read_text())
    assert found == [
        Accelerator("cpu", 0, "debug", 2),  # the default partition loses its *
        Accelerator("a100", 4, "gpu", 6),
        Accelerator("a100", 8, "gpu", 2),
        Accelerator("cpu", 0, "gpu", 1),
        Accelerator("gpu", 4, "legacy", 4),  # gpu:4 says no type
        Accelerator("a100", 1, "mixed", 3),
        Accelerator("tesla", 2, "mixed", 3),
        Accelerator("cpu", 0, "nogpu", 5),  # mps and other gres are not GPUs
        Accelerator("l40s", 4, "shards", 2),  # shards share those GPUs, they add none
        Accelerator("h100", 8, "sockets", 1),
    ]


def test_sinfo_groups_that_come_out_alike_add_up_their_nodes():
    text = "gpu|gpu:a100:4(S:0-1)|6\ngpu|gpu:a100:4(S:0-1),mps:100|2\n"
    assert parse_sinfo(text) == [Accelerator("a100", 4, "gpu", 8)]


def test_sinfo_without_partitions_or_with_junk_is_empty():
    assert parse_sinfo("") == []
    assert parse_sinfo("sinfo: error: Unable to contact slurm controller\n|gpu:4|1\n") == []


@pytest.mark.parametrize(
    ("gres", "gpus"),
    [
        ("(null)", {}),
        ("gpu:8", {"gpu": 8}),
        ("gpu:a100:4(S:0-1)", {"a100": 4}),
        ("gpu:a100:2(S:0),gpu:a100:2(S:1)", {"a100": 4}),
        ("gpu:a100:no_consume:4", {"a100": 4}),
        ("gpu:tesla:2K", {"tesla": 2048}),
        ("gpu:a100:x", {}),
    ],
)
def test_gres_lists(gres, gpus):
    assert gres_gpus(gres) == gpus


# -- Lepton --------------------------------------------------------------------------------


def shape(name, num=None, listable=("pod", "deployment", "job")):
    spec = {"name": name, "listable_in": list(listable)}
    if num is not None:
        spec.update(accelerator_type="NVIDIA-H100-80GB-HBM3", accelerator_num=num)
    return {"metadata": {"id": name, "name": name}, "spec": spec}


def test_a_node_groups_job_shapes_give_the_largest_of_each_gpu_type():
    group = {"metadata": {"id": "ng-1", "name": "h100-pool"}, "status": {"ready_nodes": 3}}
    shapes = [
        shape("gpu.h100-sxm", 1),
        shape("gpu.2xh100-sxm", 2),
        shape("gpu.8xh100-sxm", 8),
        shape("gpu.16xh100-sxm", 16, listable=("deployment",)),  # not for jobs
        shape("cpu.small"),
        shape("custom-shape", 4),  # gpu_type cannot name it
    ]
    assert group_accelerators(group, shapes) == [
        Accelerator("cpu", 0, "ng-1", 3),
        Accelerator("h100-sxm", 8, "ng-1", 3),
    ]


def test_a_shape_without_its_gpu_count_takes_it_from_its_name():
    assert shape_offer(shape("gpu.4xa100-80gb")) == ("a100-80gb", 4)
    assert shape_offer(shape("gpu.a10")) == ("a10", 1)
    assert shape_offer({"metadata": {"id": "x"}, "spec": {"name": "gpu.a10"}}) is None


# -- the cache -----------------------------------------------------------------------------


def test_the_cache_keeps_a_value_for_its_lifetime_then_asks_again():
    clock, calls = Clock(), []
    cache = TtlCache(60.0, clock)
    assert cache.get("k", lambda: calls.append(1) or "first") == "first"
    clock.now += 59.9
    assert cache.get("k", lambda: calls.append(1) or "second") == "first"
    clock.now += 0.1
    assert cache.get("k", lambda: calls.append(1) or "third") == "third"
    assert len(calls) == 2


def test_a_failed_computation_is_not_kept():
    cache = TtlCache(60.0, Clock())

    def fail():
        raise Unavailable("MongoDB unreachable")

    with pytest.raises(Unavailable):
        cache.get("k", fail)
    assert cache.get("k", lambda: "ok") == "ok"


def test_callers_at_once_wait_for_one_computation():
    cache, calls, started = TtlCache(60.0), [], threading.Event()

    def slow():
        calls.append(1)
        started.set()
        time.sleep(0.2)
        return "answer"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", slow)))]
    threads[0].start()
    started.wait(5)
    threads += [threading.Thread(target=lambda: results.append(cache.get("k", slow)))]
    threads += [threading.Thread(target=lambda: results.append(cache.get("j", lambda: "j")))]
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(5)
    assert sorted(results) == ["answer", "answer", "j"] and calls == [1]


# -- one org's answer ----------------------------------------------------------------------


class Backend:
    def __init__(self, answer):
        self.answer = answer
        self.calls = 0
        self.closed = False

    def accelerators(self):
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def close(self):
        self.closed = True


TOKEN = "lepton-secret-token-9f2"


def org_services(backends, workspaces, clock):
    """What gpu_types needs of Services: settings, the org's workspaces, and backends
    built per target."""

    @contextmanager
    def open_backend(target):
        if target not in backends:
            raise WorkspaceMissing(f"workspace {target.partition(':')[2]} not found")
        try:
            yield backends[target]
        finally:
            backends[target].close()

    def workspace(workspace_id):
        details = {"lepton_workspace_id": "ws", "lepton_auth_token": TOKEN}
        return WorkspaceConfig(workspace_id, "acme", "lepton", 1.0, details)

    return SimpleNamespace(
        settings=SimpleNamespace(local_backend="process"),
        store=SimpleNamespace(workspaces=SimpleNamespace(of_types=lambda org, kinds: workspaces)),
        resources=SimpleNamespace(open_backend=open_backend, workspace=workspace),
        accelerator_cache=accelerators.new_cache(clock),
    )


def test_one_backend_failing_shows_its_error_and_the_others_still_answer():
    backends = {
        "process": Backend([Accelerator("cpu", 0, "local")]),
        "slurm:s1": Backend([Accelerator("a100", 4, "gpu", 2), Accelerator("cpu", 0, "debug")]),
        "lepton:l1": Backend(SubmitRejected(f"Lepton rejected the token {TOKEN} (HTTP 401)")),
        "slurm:s2": Backend(BackendUnavailable("sinfo on login2:22: Connection refused")),
    }
    workspaces = [("slurm", "s1"), ("lepton", "l1"), ("slurm", "s2"), ("slurm", "gone")]
    svc = org_services(backends, workspaces, Clock())
    answer = accelerators.gpu_types(svc, "acme")
    assert answer["gpu_types"] == ["a100", "cpu"]
    by_target = {b["backend"]: b for b in answer["backends"]}
    assert [b["backend"] for b in answer["backends"]] == [
        "process",
        "slurm:s1",
        "lepton:l1",
        "slurm:s2",
        "slurm:gone",
    ]
    assert by_target["slurm:s1"]["accelerators"] == [
        {"name": "a100", "count": 4, "where": "gpu", "nodes": 2},
        {"name": "cpu", "count": 0, "where": "debug", "nodes": 1},
    ]
    assert "error" not in by_target["slurm:s1"]
    assert by_target["lepton:l1"] == {
        "backend": "lepton:l1",
        "accelerators": [],
        "error": "Lepton rejected the token *** (HTTP 401)",
    }
    assert "Connection refused" in by_target["slurm:s2"]["error"]
    assert "not found" in by_target["slurm:gone"]["error"]
    assert TOKEN not in json.dumps(answer)
    assert all(b.closed for b in backends.values())


def test_each_backend_is_asked_once_a_minute_however_many_requests_and_orgs():
    clock = Clock()
    backends = {"process": Backend([Accelerator("cpu", 0, "local")])}
    backends["slurm:s1"] = Backend(BackendUnavailable("down"))
    svc = org_services(backends, [("slurm", "s1")], clock)
    for org in ("acme", "globex") * 20:
        accelerators.gpu_types(svc, org)
    assert backends["process"].calls == 1 and backends["slurm:s1"].calls == 1
    clock.now += accelerators.CACHE_SECONDS
    assert accelerators.gpu_types(svc, "acme")["gpu_types"] == ["cpu"]
    assert backends["process"].calls == 2 and backends["slurm:s1"].calls == 2


def test_a_bug_in_one_backend_is_an_error_entry_without_its_details():
    backends = {"process": Backend(RuntimeError("boom at 0x7f"))}
    answer = accelerators.gpu_types(org_services(backends, [], Clock()), "acme")
    assert answer == {
        "gpu_types": [],
        "backends": [{"backend": "process", "accelerators": [], "error": accelerators.INTERNAL}],
    }
