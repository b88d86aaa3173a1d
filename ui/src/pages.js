// Sign-in, comparing jobs (curves overlaid), and the read-only lists of workspaces and
// datasets.
import { get, signIn } from "./api.js";
import { Chart } from "./chart.js";
import { badge, errorBox, every, h, table, when } from "./dom.js";

export function loginPage(root, done) {
  const org = h("input", { id: "org", name: "org", required: true, autocomplete: "organization", placeholder: "org" });
  const key = h("input", { id: "key", name: "key", type: "password", required: true, autocomplete: "off", placeholder: "API key" });
  const message = h("div", { id: "login-error" });
  const form = h(
    "form",
    {
      id: "login",
      onsubmit: async (event) => {
        event.preventDefault();
        message.replaceChildren();
        try {
          await signIn(org.value.trim(), key.value.trim());
          key.value = "";
          done();
        } catch (error) {
          message.replaceChildren(errorBox(error));
        }
      },
    },
    h("h1", {}, "Sign in"),
    h("label", {}, "Org ", org),
    h("label", {}, "API key ", key),
    h("button", { type: "submit", id: "sign-in" }, "Sign in"),
    message,
  );
  root.replaceChildren(form);
  return () => {};
}

export function comparePage(root, ids) {
  const metric = h(
    "select",
    { id: "compare-metric", onchange: () => refresh() },
    ["accuracy", "loss"].map((m) => h("option", { value: m }, m)),
  );
  const variant = h(
    "select",
    { id: "compare-variant", onchange: () => refresh() },
    ["val", "train"].map((v) => h("option", { value: v }, v)),
  );
  const box = h("div", { id: "chart-compare", className: "chart wide" });
  const rows = h("div", { id: "compare-rows" });
  const chart = new Chart(box, "compare");
  root.replaceChildren(
    h("p", {}, h("a", { href: "#/jobs" }, "‹ all jobs")),
    h("h1", {}, `Compare ${ids.length} jobs`),
    h("div", { className: "controls" }, metric, variant),
    box,
    rows,
  );
  async function refresh() {
    try {
      const found = await get("jobs:compare", { job_ids: ids.join(","), metric: metric.value, variant: variant.value });
      chart.update(
        found.jobs.map((job) => {
          const curve = job.variants[variant.value] || { x: [], y: [] };
          return { label: job.name || job.id.slice(0, 8), x: curve.x, y: curve.y };
        }),
      );
      rows.replaceChildren(
        table(
          [
            { label: "job", cell: (j) => h("a", { href: `#/jobs/${j.id}` }, j.name || j.id) },
            { label: "status", cell: (j) => badge(j.status) },
            { label: "last", cell: (j) => fmt((j.last_metrics[variant.value] || {}).last) },
            { label: "max", cell: (j) => fmt((j.last_metrics[variant.value] || {}).max) },
            { label: "min", cell: (j) => fmt((j.last_metrics[variant.value] || {}).min) },
          ],
          found.jobs,
        ),
      );
    } catch (error) {
      rows.replaceChildren(errorBox(error));
    }
  }
  const stop = every(3000, refresh);
  return () => {
    stop();
    chart.destroy();
  };
}

function fmt(value) {
  return typeof value === "number" ? value.toPrecision(4) : "";
}

const COLUMNS = {
  workspaces: [
    { label: "name", cell: (w) => w.name },
    { label: "cloud", cell: (w) => w.cloud_type },
    { label: "created", cell: (w) => when(w.created_on) },
  ],
  datasets: [
    { label: "name", cell: (d) => d.name },
    { label: "type", cell: (d) => d.type },
    { label: "format", cell: (d) => d.format },
    { label: "status", cell: (d) => badge(d.status) },
    { label: "created", cell: (d) => when(d.created_on) },
  ],
};

export function listPage(root, kind) {
  const body = h("div", { id: `${kind}-table` });
  root.replaceChildren(h("h1", {}, kind[0].toUpperCase() + kind.slice(1)), body);
  get(kind, { limit: 100, sortBy: "createdAt", sortOrder: "desc" })
    .then((page) => body.replaceChildren(table(COLUMNS[kind], page[kind])))
    .catch((error) => body.replaceChildren(errorBox(error)));
  return () => {};
}
