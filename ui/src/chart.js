// Curves with uPlot: one chart per metric, one line per variant (or per job when
// comparing). The container says how many points it shows (data-points), which is what a
// person sees grow and what the browser test reads.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

// series: [{label, x: [...], y: [...]}] -> uPlot's aligned data (x union, gaps as null)
function aligned(series) {
  const xs = [...new Set(series.flatMap((s) => s.x))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const columns = series.map((s) => {
    const ys = new Array(xs.length).fill(null);
    s.x.forEach((x, i) => {
      ys[index.get(x)] = s.y[i];
    });
    return ys;
  });
  return [xs, ...columns];
}

export class Chart {
  constructor(container, title) {
    this.container = container;
    this.title = title;
    this.plot = null;
    this.labels = "";
  }

  update(series) {
    const data = aligned(series);
    const labels = series.map((s) => s.label).join("|");
    this.container.dataset.points = String(data[0].length);
    if (this.plot && labels === this.labels) {
      this.plot.setData(data);
      return;
    }
    if (this.plot) this.plot.destroy();
    this.labels = labels;
    const width = Math.max(320, this.container.clientWidth || 480);
    this.plot = new uPlot(
      {
        title: this.title,
        width,
        height: 240,
        scales: { x: { time: false } },
        axes: [{ label: "epoch" }, {}],
        series: [
          { label: "epoch" },
          ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2 })),
        ],
      },
      data,
      this.container,
    );
  }

  destroy() {
    if (this.plot) this.plot.destroy();
  }
}
