// The jobs list: status badges, filters, sort and paging in the list grammar
// (filterBy, search, sortBy, offset/limit), refreshed every two seconds.
import { get } from "./api.js";
import { badge, errorBox, every, h, table, when } from "./dom.js";

const STATUSES = ["", "Pending", "Running", "Pausing", "Paused", "Done", "Error", "Canceled"];
const SORTS = [
  ["createdAt:desc", "newest first"],
  ["createdAt:asc", "oldest first"],
  ["name:asc", "name"],
  ["status:asc", "status"],
  ["last_metrics.accuracy.val.max:desc", "best val accuracy"],
];
const LIMIT = 20;

export function jobsPage(root) {
  const state = { status: "", search: "", sort: SORTS[0][0], offset: 0 };
  const chosen = new Set();
  const list = h("div", { id: "jobs-table" });
  const pager = h("span", { id: "pager" });
  const compare = h(
    "button",
    {
      type: "button",
      id: "compare",
      onclick: () => {
        if (chosen.size) window.location.hash = `#/compare/${[...chosen].join(",")}`;
      },
    },
    "Compare selected",
  );
  const status = h(
    "select",
    { id: "filter-status", onchange: (e) => set({ status: e.target.value }) },
    STATUSES.map((s) => h("option", { value: s }, s || "any status")),
  );
  const search = h("input", {
    id: "filter-search",
    type: "search",
    placeholder: "search names, networks",
    onchange: (e) => set({ search: e.target.value }),
  });
  const sort = h(
    "select",
    { id: "sort", onchange: (e) => set({ sort: e.target.value }) },
    SORTS.map(([value, label]) => h("option", { value }, label)),
  );
  const prev = h("button", { type: "button", onclick: () => set({ offset: Math.max(0, state.offset - LIMIT) }) }, "‹ Prev");
  const next = h("button", { type: "button", onclick: () => set({ offset: state.offset + LIMIT }) }, "Next ›");
  root.replaceChildren(
    h("h1", {}, "Jobs"),
    h("div", { className: "controls" }, status, search, sort, compare),
    list,
    h("div", { className: "controls" }, prev, pager, next),
  );

  let refresh = async () => {};
  function set(changes) {
    Object.assign(state, changes, "offset" in changes ? {} : { offset: 0 });
    refresh();
  }

  refresh = async () => {
    const [sortBy, sortOrder] = state.sort.split(":");
    const params = new URLSearchParams({ sortBy, sortOrder, offset: state.offset, limit: LIMIT });
    if (state.status) params.append("filterBy", `status==${state.status}`);
    if (state.search) params.set("search", state.search);
    try {
      const page = await get("jobs", params);
      const total = page.pagination_info.total_records;
      pager.textContent = total ? `${state.offset + 1}–${Math.min(total, state.offset + LIMIT)} of ${total}` : "no jobs";
      prev.disabled = state.offset === 0;
      next.disabled = state.offset + LIMIT >= total;
      list.replaceChildren(render(page.jobs, chosen));
    } catch (error) {
      list.replaceChildren(errorBox(error));
    }
  };
  return every(2000, () => refresh());
}

function render(jobs, chosen) {
  const progress = (job) => {
    const d = job.job_details || {};
    return d.max_epoch ? `${d.epoch || 0}/${d.max_epoch}` : d.epoch ?? "";
  };
  return table(
    [
      {
        label: "",
        cell: (job) =>
          h("input", {
            type: "checkbox",
            "aria-label": `select ${job.name || job.id}`,
            checked: chosen.has(job.id),
            onchange: (e) => (e.target.checked ? chosen.add(job.id) : chosen.delete(job.id)),
          }),
      },
      { label: "name", cell: (job) => h("a", { href: `#/jobs/${job.id}`, className: "job-link" }, job.name || job.id) },
      { label: "action", cell: (job) => job.action },
      { label: "network", cell: (job) => job.network_arch },
      { label: "status", cell: (job) => badge(job.status) },
      { label: "epoch", cell: progress },
      { label: "created", cell: (job) => when(job.created_on) },
    ],
    jobs,
  );
}
