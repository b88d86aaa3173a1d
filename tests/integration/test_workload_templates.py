"""Workload templates (seed 003) through the API: CRUD with versions, PATCH with
``fieldsToClear``, org isolation, global templates read-only to whoever may not change
them, unique names per scope, jobs made from a template with overrides, and a template
that stops being runnable when what it names goes away."""

from __future__ import annotations

import pytest

from jobyard.schemas.catalog import load_entry
from jobyard.schemas.workload_template import MULTI_NODE, deep_merge
from jobyard.store.catalog import REFERENCE
from tests.helpers import assert_error, on_both_servers

pytestmark = [pytest.mark.integration, on_both_servers]

SPEC = {
    "kind": "experiment",
    "action": "train",
    "network_arch": REFERENCE.network_arch,
    "specs": {"train": {"num_epochs": 2}, "model": {"hidden_size": 16}},
    "timeout_minutes": 30,
    "description": "nightly retrain",
}


def create(session, name="nightly", spec=None, kind="trainings", **meta):
    body = {"meta": {"name": name, **meta}, "spec": SPEC if spec is None else spec}
    return session.call("POST", f"workload-templates/{kind}", json=body)


def test_crud_with_versions_and_fields_to_clear(login):
    s = login()
    made = create(s)
    assert made.status_code == 202, made.json
    template = made.json
    tid = template["meta"]["id"]
    assert template["meta"]["version"] == 1 and template["meta"]["workloadType"] == "training"
    assert template["meta"]["createdBy"] == "alice" and template["meta"]["scope"] == "org"
    assert template["runnable"] == {"value": True, "reasons": []}
    defaults = REFERENCE.default_spec("train")
    assert template["combinedSpec"]["specs"] == deep_merge(defaults, SPEC["specs"])
    assert template["spec"] == SPEC  # stored as written: a patch, not the merge

    assert s.call("GET", f"workload-templates/{tid}").json == template
    assert s.call("GET", f"workload-templates/trainings/{tid}").json == template
    assert_error(s.call("GET", f"workload-templates/distributed/{tid}"), 404)

    replaced = s.call(
        "PUT",
        f"workload-templates/trainings/{tid}",
        json={"meta": {"name": "nightly", "description": "v2"}, "spec": {**SPEC, "name": "n"}},
    )
    assert replaced.status_code == 200, replaced.json
    assert replaced.json["meta"]["version"] == 2 and replaced.json["spec"]["name"] == "n"

    patched = s.call(
        "PATCH",
        f"workload-templates/trainings/{tid}",
        json={
            "spec": {"specs": {"train": {"learning_rate": 0.05}}},
            "fieldsToClear": ["spec.timeout_minutes", "specs.model", "spec.not_there"],
        },
    )
    assert patched.status_code == 200, patched.json
    spec = patched.json["spec"]
    assert patched.json["meta"]["version"] == 3 and patched.json["meta"]["description"] == "v2"
    assert "timeout_minutes" not in spec and "model" not in spec["specs"]
    assert spec["specs"]["train"] == {"num_epochs": 2, "learning_rate": 0.05}
    assert patched.json["combinedSpec"]["specs"]["model"] == defaults["model"]

    first = s.call("GET", f"workload-templates/{tid}?version=1").json
    assert first["spec"] == SPEC and first["meta"]["version"] == 1
    assert s.call("GET", f"workload-templates/{tid}?version=2").json["spec"]["name"] == "n"
    assert s.call("GET", f"workload-templates/{tid}?version=3").json["meta"]["version"] == 3
    assert_error(s.call("GET", f"workload-templates/{tid}?version=4"), 404)

    cleared_name = s.call(
        "PATCH", f"workload-templates/trainings/{tid}", json={"fieldsToClear": ["meta.name"]}
    )
    assert "meta.name" in assert_error(cleared_name, 400)["error_desc"]

    assert s.call("DELETE", f"workload-templates/trainings/{tid}").status_code == 204
    assert_error(s.call("GET", f"workload-templates/{tid}"), 404)
    assert_error(s.call("GET", f"workload-templates/{tid}?version=1"), 404)


def test_bad_bodies_are_400s_naming_the_field(login):
    s = login()
    assert "timeout_minutes" in str(assert_error(create(s, spec={"timeout_minutes": "x"}), 400))
    assert "bogus" in str(assert_error(create(s, spec={"bogus": 1}), 400))
    assert "template_id" in str(assert_error(create(s, spec={"template_id": "t"}), 400))
    assert "name" in str(assert_error(create(s, name=""), 400))
    with_master = {"meta": {"name": "m"}, "spec": SPEC, "master": {"kind": "experiment"}}
    refused = s.call("POST", "workload-templates/trainings", json=with_master)
    assert "master" in str(assert_error(refused, 400))
    assert_error(s.call("POST", "workload-templates/workspaces", json={}), 404)
    assert_error(s.call("GET", "workload-templates/not-a-template-id"), 404)


def test_names_are_unique_per_scope_and_orgs_are_isolated(login):
    s, other = login(), login("globex")
    first = create(s).json["meta"]["id"]
    clash = assert_error(create(s), 409)
    assert first in clash["error_desc"] and "nightly" in clash["error_desc"]
    assert create(other).status_code == 202  # another org, another scope
    assert_error(other.call("GET", f"workload-templates/{first}"), 404)
    assert_error(other.call("DELETE", f"workload-templates/trainings/{first}"), 404)
    listed = other.call("GET", "workload-templates").json
    assert [e["meta"]["id"] for e in listed["entries"]] != [first]
    assert listed["pagination"]["total"] == 1
    renamed = create(s, name="other").json["meta"]["id"]
    clash = s.call(
        "PATCH", f"workload-templates/trainings/{renamed}", json={"meta": {"name": "nightly"}}
    )
    assert first in assert_error(clash, 409)["error_desc"]


def test_global_templates_are_listed_everywhere_and_changed_by_their_admins_only(login):
    admin, member, elsewhere = login(admin=True), login(user="bob"), login("globex", admin=True)
    assert_error(create(member, scope="global"), 403)
    made = create(admin, name="shared", scope="global")
    assert made.status_code == 202, made.json
    gid = made.json["meta"]["id"]
    assert create(admin, name="shared").status_code == 202  # org scope: another namespace
    seen = elsewhere.call("GET", "workload-templates?filterBy=scope==global").json["entries"]
    assert [e["meta"]["id"] for e in seen] == [gid]
    assert seen[0]["runnable"]["value"] is True
    patch = {"meta": {"description": "mine now"}}
    assert_error(member.call("PATCH", f"workload-templates/trainings/{gid}", json=patch), 403)
    assert_error(elsewhere.call("PATCH", f"workload-templates/trainings/{gid}", json=patch), 403)
    assert_error(elsewhere.call("DELETE", f"workload-templates/trainings/{gid}"), 403)
    changed = admin.call("PATCH", f"workload-templates/trainings/{gid}", json=patch)
    assert changed.json["meta"]["version"] == 2
    job = elsewhere.call("POST", "jobs", json={"template_id": gid})
    assert job.status_code == 201, job.json


def test_a_job_from_a_template_takes_overrides_and_records_its_origin(login):
    s = login()
    template = create(s).json
    tid = template["meta"]["id"]
    body = {"template_id": tid, "name": "tonight", "specs": {"train": {"batch_size": 8}}}
    created = s.call("POST", "jobs", json=body)
    assert created.status_code == 201, created.json
    job = created.json
    assert job["template_id"] == tid and job["template_version"] == 1
    assert job["name"] == "tonight" and job["description"] == "nightly retrain"
    assert job["timeout_minutes"] == 30 and job["action"] == "train"
    expected = deep_merge(template["combinedSpec"]["specs"], body["specs"])
    assert job["specs"] == expected
    assert job["specs"]["train"]["num_epochs"] == 2 and job["specs"]["train"]["batch_size"] == 8
    listed = s.call("GET", f"jobs?filterBy=template_id=={tid}").json["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    bad = s.call("POST", "jobs", json={"template_id": tid, "timeout_minutes": -1})
    assert "timeout_minutes" in str(assert_error(bad, 400))
    missing = s.call("POST", "jobs", json={"template_id": "nope"})
    assert "nope" in assert_error(missing, 400)["error_desc"]
    assert "kind" in str(assert_error(s.call("POST", "jobs", json={"action": "train"}), 400))


def test_a_template_stops_being_runnable_when_what_it_names_goes_away(login, store):
    s, admin = login(), login(admin=True)
    entry = load_entry(
        {
            "network_arch": "tmpl_net",
            "name": "own",
            "command": ["{python}", "-c", "print(1)"],
            "actions": {"train": {"default_spec": {"train": {"epochs": 1}}}},
        },
        "acme",
    )
    made = admin.call("POST", "base_experiments", json=entry.data)
    assert made.status_code == 201, made.json
    entry_id = made.json["id"]
    spec = {"kind": "experiment", "action": "train", "base_experiment_ids": [entry_id]}
    tid = create(s, spec=spec).json["meta"]["id"]
    ws = s.call("POST", "workspaces", json={"name": "w", "cloud_type": "local"}).json["id"]
    wid = create(s, name="with-ws", spec={**SPEC, "workspace": ws}).json["meta"]["id"]
    assert s.call("GET", f"workload-templates/{tid}").json["runnable"]["value"] is True

    assert admin.call("DELETE", f"base_experiments/{entry_id}").status_code == 200
    assert s.call("DELETE", f"workspaces/{ws}").status_code == 200
    for template_id, word in ((tid, entry_id), (wid, ws)):
        runnable = s.call("GET", f"workload-templates/{template_id}").json["runnable"]
        assert runnable["value"] is False and word in " ".join(runnable["reasons"]), runnable
        refused = assert_error(s.call("POST", "jobs", json={"template_id": template_id}), 400)
        assert "not runnable" in refused["error_desc"] and word in refused["error_desc"]
    bad_specs = create(s, name="bad-specs", spec={**SPEC, "specs": {"train": {"nope": 1}}})
    assert bad_specs.json["runnable"]["value"] is False
    assert "specs" in " ".join(bad_specs.json["runnable"]["reasons"])


def test_distributed_templates_are_stored_but_not_runnable(login):
    s = login()
    made = create(s, kind="distributed", name="multi")
    assert made.status_code == 202, made.json
    assert made.json["meta"]["workloadType"] == "distributed"
    assert made.json["runnable"] == {"value": False, "reasons": [MULTI_NODE]}
    refused = assert_error(
        s.call("POST", "jobs", json={"template_id": made.json["meta"]["id"]}), 400
    )
    assert MULTI_NODE in refused["error_desc"]
    kinds = s.call("GET", "workload-templates/distributed").json["entries"]
    assert [k["meta"]["name"] for k in kinds] == ["multi"]
    assert s.call("GET", "workload-templates/trainings").json["entries"] == []


def test_template_lists_take_the_list_grammar(login):
    s = login()
    for name in ("night-a", "night-b", "day"):
        assert create(s, name=name).status_code == 202
    got = s.call("GET", "workload-templates?filterBy=name=^night&sortBy=name&sortOrder=desc").json
    assert [e["meta"]["name"] for e in got["entries"]] == ["night-b", "night-a"]
    assert got["pagination"] == {"total": 2, "offset": 0, "limit": 50, "next": None}
    page = s.call("GET", "workload-templates?sortBy=name&limit=2").json
    assert [e["meta"]["name"] for e in page["entries"]] == ["day", "night-a"]
    assert page["pagination"]["next"] == 2
    assert s.call("GET", "workload-templates/count?search=NIGHT").json == {"count": 2}
    assert s.call("GET", "workload-templates/count?filterBy=workloadType==training").json == {
        "count": 3
    }
    assert_error(s.call("GET", "workload-templates?filterBy=createdAt=@2026"), 400)
