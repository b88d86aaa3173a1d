// One job: status and progress with ETA, the controls, curves that grow as epochs
// arrive, the log following its tail, events, an evaluate job's confusion matrix, specs
// and the results to download. Every two seconds it asks the API again.
import { ApiError, call, download, get, logs } from "./api.js";
import { Chart } from "./chart.js";
import { badge, errorBox, every, h, when } from "./dom.js";

const ACTIONS = {
  pause: { when: ["Running"], body: { graceful: true }, ask: "Pause this job? It checkpoints, then stops." },
  resume: { when: ["Paused"], body: {}, ask: "Resume this job from its checkpoint?" },
  cancel: { when: ["Pending", "Running", "Pausing", "Paused", "Resuming"], ask: "Cancel this job?" },
  retry: { when: ["Done", "Error", "Canceled"], ask: "Start a new job with the same parameters?" },
};

function eventLine(e) {
  if (e.type === "scalar") return `epoch ${e.iteration} · ${e.metric}/${e.variant}: ${Number(e.value).toPrecision(4)}`;
  if (e.type === "plot") return `plot ${e.metric}/${e.variant}`;
  const epoch = e.epoch && e.max_epoch ? `epoch ${e.epoch}/${e.max_epoch} · ` : "";
  return `[${e.status || e.type}] ${epoch}${e.message || ""}`;
}

export function jobPage(root, jobId) {
  const title = h("h1", {}, jobId);
  const state = h("div", { id: "job-status" });
  const buttons = h("div", { className: "controls", id: "job-actions" });
  const notice = h("div", { id: "notice" });
  const progress = h("progress", { id: "epoch-progress", max: 1, value: 0 });
  const progressText = h("span", { id: "epoch-text" });
  const charts = h("div", { className: "charts", hidden: true });  // until a curve exists
  const lossBox = h("div", { id: "chart-loss", className: "chart" });
  const accuracyBox = h("div", { id: "chart-accuracy", className: "chart" });
  charts.append(lossBox, accuracyBox);
  const loss = new Chart(lossBox, "loss");
  const accuracy = new Chart(accuracyBox, "accuracy");
  const confusion = h("div", { id: "confusion" });
  const logBox = h("pre", { id: "log", className: "log" });
  const eventsBox = h("ol", { id: "events", className: "events" });
  const specs = h("pre", { id: "specs" });
  const files = h("div", { id: "files" });
  root.replaceChildren(
    h("p", {}, h("a", { href: "#/jobs" }, "‹ all jobs")),
    title,
    state,
    h("div", { className: "progress" }, progress, progressText),
    buttons,
    notice,
    charts,
    confusion,
    h("h2", {}, "Log"),
    logBox,
    h("h2", {}, "Events"),
    eventsBox,
    h("h2", {}, "Specs"),
    specs,
    h("h2", {}, "Results"),
    files,
  );

  let offset = 0;
  let shownStatus = null;
  let plotted = false;

  async function act(name) {
    const action = ACTIONS[name];
    if (!window.confirm(action.ask)) return;
    try {
      const done = await call("POST", `jobs/${jobId}:${name}`, action.body);
      if (name === "retry") window.location.hash = `#/jobs/${done.id}`;
      notice.replaceChildren(h("p", { className: "ok" }, `${name}: ${done.status}`));
      tick();
    } catch (error) {
      notice.replaceChildren(errorBox(error));
    }
  }

  function controls(job) {
    buttons.replaceChildren(
      ...Object.keys(ACTIONS).map((name) =>
        h("button", { type: "button", id: `do-${name}`, disabled: !ACTIONS[name].when.includes(job.status), onclick: () => act(name) }, name),
      ),
      h("button", { type: "button", id: "do-download", disabled: job.status !== "Done", onclick: () => download(jobId).catch((e) => notice.replaceChildren(errorBox(e))) }, "download results"),
    );
  }

  async function curves() {
    const found = (await get(`jobs/${jobId}:metrics`)).metrics;
    const series = (metric) =>
      Object.entries(found[metric] || {}).map(([variant, c]) => ({ label: variant, x: c.x, y: c.y }));
    if (Object.keys(found).length) {
      charts.hidden = false;
      loss.update(series("loss"));
      accuracy.update(series("accuracy"));
    }
  }

  async function confusionMatrix() {
    const plots = (await get(`jobs/${jobId}:metrics`, { type: "plot", metric: "confusion_matrix" })).events;
    if (!plots.length) return;
    const figure = JSON.parse(plots[plots.length - 1].plot_str);
    const trace = figure.data[0];
    const top = Math.max(1, ...trace.z.flat());
    confusion.replaceChildren(
      h("h2", {}, "Confusion matrix"),
      h(
        "table",
        { className: "matrix", id: "confusion-matrix" },
        h("tr", {}, h("th", {}, "actual \\ predicted"), trace.x.map((c) => h("th", {}, c))),
        trace.z.map((row, i) =>
          h("tr", {}, h("th", {}, trace.y[i]), row.map((n) => h("td", { className: `heat-${Math.round((n / top) * 4)}` }, n))),
        ),
      ),
    );
    plotted = true;
  }

  // Only the events after the last one shown (per run): a long job's thousands of
  // events are read once, not every two seconds.
  const seen = {};
  const shown = [];
  async function newEvents(run) {
    const after = seen[run] || 0;
    const found = (await get(`jobs/${jobId}:events`, { detailed: true, run, after_seq: after })).events;
    for (const e of found) {
      seen[run] = Math.max(seen[run] || 0, e.seq || 0);
      shown.push(eventLine(e));
    }
    if (found.length) {
      shown.splice(0, Math.max(0, shown.length - 30));
      eventsBox.replaceChildren(...shown.map((line) => h("li", {}, line)));
    }
  }

  async function follow() {
    const chunk = await logs(jobId, offset);
    if (chunk.text) {
      logBox.append(chunk.text);
      logBox.scrollTop = logBox.scrollHeight;
    }
    offset = chunk.next;
  }

  async function tick() {
    let job;
    try {
      job = await get(`jobs/${jobId}`);
    } catch (error) {
      state.replaceChildren(errorBox(error instanceof ApiError && error.status === 404 ? new Error("no such job") : error));
      return;
    }
    const d = job.job_details || {};
    title.textContent = job.name || job.id;
    state.replaceChildren(
      badge(job.status),
      h("span", { id: "detailed-status" }, ` ${(d.detailed_status || {}).message || ""}`),
      h("span", { className: "muted" }, ` · ${job.action} · ${job.network_arch} · created ${when(job.created_on)}`),
    );
    progress.max = d.max_epoch || 1;
    progress.value = d.epoch || 0;
    progressText.textContent = d.max_epoch ? ` epoch ${d.epoch || 0}/${d.max_epoch}${d.eta && job.status === "Running" ? ` · ETA ${d.eta}` : ""}` : "";
    if (shownStatus !== job.status) {
      controls(job);
      specs.textContent = JSON.stringify(job.specs, null, 2);
      shownStatus = job.status;
      if (job.status === "Done") listFiles();
    }
    await newEvents(job.run || 1);
    await Promise.all([curves(), follow(), plotted || job.action !== "evaluate" ? null : confusionMatrix()]);
  }

  async function listFiles() {
    try {
      const found = await call("POST", `jobs/${jobId}:list_files`, {});
      const names = found.files || found.file_names || found;
      files.replaceChildren(h("ul", {}, (Array.isArray(names) ? names : []).map((n) => h("li", {}, typeof n === "string" ? n : n.path || JSON.stringify(n)))));
    } catch (error) {
      files.replaceChildren(errorBox(error));
    }
  }

  const stop = every(2000, tick);
  return () => {
    stop();
    loss.destroy();
    accuracy.destroy();
  };
}
