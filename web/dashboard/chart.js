// A small inline SVG line chart of delivered % and bounces + errors % over time (no library).

const NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 180;
const PAD = { left: 44, right: 12, top: 12, bottom: 28 };
export const SERIES = [
  { key: "deliveredRate", name: "Delivered %", cls: "delivered" },
  { key: "bouncesAndErrorsRate", name: "Bounces + errors %", cls: "bounces" },
];

function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

const clock = (t) => new Date(t).toLocaleTimeString([], { hour12: false });

/** Draw `points` ([{t: ms, deliveredRate, bouncesAndErrorsRate}]) into `container`. */
export function drawChart(container, points) {
  const svg = el("svg", {
    viewBox: `0 0 ${W} ${H}`, role: "img", "data-testid": "chart-svg",
    "data-points": points.length,
    "aria-label": "Delivered % and bounces + errors % over time",
  });
  const top = Math.max(10, ...points.flatMap((p) => SERIES.map((s) => p[s.key])));
  const yMax = Math.min(100, Math.ceil(top / 10) * 10);
  const t0 = points.length ? points[0].t : 0;
  const t1 = points.length ? points[points.length - 1].t : 1;
  const span = Math.max(t1 - t0, 1);
  const x = (t) => PAD.left + ((t - t0) / span) * (W - PAD.left - PAD.right);
  const y = (v) => PAD.top + (1 - v / yMax) * (H - PAD.top - PAD.bottom);

  for (const v of [0, yMax / 2, yMax]) {
    svg.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(el("text", { x: PAD.left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" },
      `${v}%`));
  }
  if (points.length) {
    svg.append(el("text", { x: PAD.left, y: H - 8, class: "axis" }, clock(t0)));
    svg.append(el("text", { x: W - PAD.right, y: H - 8, class: "axis", "text-anchor": "end" },
      clock(t1)));
  } else {
    svg.append(el("text", { x: W / 2, y: H / 2, class: "axis", "text-anchor": "middle" },
      "no figures yet"));
  }
  for (const s of SERIES) {
    const coords = points.map((p) => `${x(p.t).toFixed(1)},${y(p[s.key]).toFixed(1)}`);
    if (coords.length > 1) {
      svg.append(el("polyline", { points: coords.join(" "), class: `line ${s.cls}` }));
    }
    const last = points[points.length - 1];
    if (last) {
      svg.append(el("circle", { cx: x(last.t), cy: y(last[s.key]), r: 3, class: `dot ${s.cls}` }));
    }
  }
  const legend = document.createElement("p");
  legend.className = "legend";
  for (const s of SERIES) {
    const item = document.createElement("span");
    item.className = `key ${s.cls}`;
    item.textContent = s.name;
    legend.append(item);
  }
  container.replaceChildren(svg, legend);
}
