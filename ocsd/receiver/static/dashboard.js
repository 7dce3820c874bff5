// ocsd sink dashboard: polls /api/state and draws the groups, four SVG charts and the feed.
// Plain DOM and hand-drawn SVG: no library, no build step. Text from the messages is only
// ever set with textContent, never parsed as HTML.
"use strict";

(function () {
  const POLL_MS = 1000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#5aa9ff", "#f59e42", "#35c486", "#e25c8a", "#a78bfa", "#facc15", "#22d3ee", "#f87171"];
  const STATUS = { "-1": "Unknown", 0: "NotLoaded", 1: "WaitingUnload", 2: "UnloadInProgress", 3: "InActive", 4: "Active", 5: "Running" };
  const ACTION = { 0: "periodic", 7: "LoadCampaign", 8: "UnloadCampaign", 9: "StartDialing", 10: "StopDialing", 11: "SetDialingMode", 29: "ForceUnloadCampaign" };
  const ACTOR = { 0: "unknown", 1: "client", 2: "schedule", 3: "OCS" };
  const DIAL_MODE = {
    0: "None", 1: "Predictive", 2: "Progressive", 3: "Preview", 4: "Progressive w/ seizing",
    5: "Predictive w/ seizing", 6: "Power", 7: "Power w/ seizing", 8: "Push Preview",
    9: "Progressive GVP", 10: "Predictive GVP", 11: "Power GVP",
  };
  const OPTIMIZE = { 0: "none", 1: "Busy factor", 2: "Overdial rate", 3: "Avg waiting time", 4: "Avg distribution time" };
  const CHARTS = {
    busy_factor: { kind: "fraction", max: 1 },
    hit_ratio: { kind: "fraction", max: 1 },
    overdial_rate: { kind: "fraction", max: null },
    time_to_complete: { kind: "duration", max: null },
  };
  const FIELD_INDEX = { busy_factor: 1, hit_ratio: 2, overdial_rate: 3, time_to_complete: 4 };
  const M = { left: 44, right: 14, top: 20, bottom: 22 };
  const W = 460;
  const H = 200;

  const colorOf = new Map();

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function pct(value, digits) {
    if (value === null || value === undefined) return "–";
    return (value * 100).toFixed(digits === undefined ? 1 : digits) + "%";
  }

  function clock(epoch, withSeconds) {
    const d = new Date(epoch * 1000);
    const hh = String(d.getHours()).padStart(2, "0");
    const mm = String(d.getMinutes()).padStart(2, "0");
    const ss = String(d.getSeconds()).padStart(2, "0");
    return withSeconds === false ? hh + ":" + mm : hh + ":" + mm + ":" + ss;
  }

  function statusBadge(status) {
    const known = [0, 1, 4, 5].includes(status);
    return el("span", { class: "badge " + (known ? "status-" + status : "status-other") }, STATUS[status] || String(status));
  }

  function optimizeText(group) {
    if (group.optimize_by === null || group.optimize_by === undefined) return "–";
    const name = OPTIMIZE[group.optimize_by] || String(group.optimize_by);
    const unit = group.optimize_by === 1 || group.optimize_by === 2 ? "\u00a0%" : "\u00a0s"; // no break before the unit
    return name + " " + group.optimize_goal + unit;
  }

  function assignColors(groups) {
    groups.forEach((group, index) => {
      if (!colorOf.has(group.dbid)) colorOf.set(group.dbid, COLORS[colorOf.size % COLORS.length]);
      void index;
    });
  }

  // -- the groups table -------------------------------------------------------------

  function renderGroups(groups, now) {
    const body = document.getElementById("groups-body");
    const rows = [];
    for (const group of groups) {
      const tr = el("tr", { "data-dbid": group.dbid, "data-status": group.status, class: "group-row" });
      const name = el("td", { class: "name" });
      const swatch = el("span", { class: "swatch" });
      swatch.setAttribute("data-color", colorOf.get(group.dbid));
      name.appendChild(swatch);
      name.appendChild(document.createTextNode(group.name));
      const detail = group.campaign + " @ " + group.group + (group.template ? " · " + group.template : "");
      name.appendChild(el("span", { class: "detail" }, detail));
      tr.appendChild(name);
      tr.appendChild(el("td", { class: "muted" }, group.dbid));
      const status = el("td");
      status.appendChild(statusBadge(group.status));
      tr.appendChild(status);
      tr.appendChild(el("td", { class: "wraps" }, group.dial_mode === null || group.dial_mode === undefined ? "–" : DIAL_MODE[group.dial_mode] || group.dial_mode));
      tr.appendChild(el("td", { class: "wraps" }, optimizeText(group)));
      tr.appendChild(el("td", { class: "num" }, pct(group.busy_factor)));
      tr.appendChild(el("td", { class: "num" }, pct(group.hit_ratio)));
      tr.appendChild(el("td", { class: "num" }, pct(group.overdial_rate, 2)));
      // the sink writes durations (ocsd/receiver/display.py: rounded once, never "14 h 60 min")
      tr.appendChild(el("td", { class: "num" }, group.time_to_complete_text === undefined ? "–" : group.time_to_complete_text));
      const lists = el("td", { class: "lists" });
      for (const cl of group.calling_lists || []) {
        // a long name ends in "…" where the column is narrow; the whole name shows on hover
        const item = el("span", { class: "list", title: cl.name });
        item.appendChild(el("span", { class: "list-name" }, cl.name));
        if (cl.hit_ratio !== null) item.appendChild(el("span", { class: "muted" }, "hit " + pct(cl.hit_ratio, 0)));
        lists.appendChild(item);
      }
      tr.appendChild(lists);
      tr.appendChild(el("td", { class: "num" }, group.messages + (group.violations ? " / " + group.violations + "✗" : "")));
      const age = Math.max(0, Math.round(now - group.received));
      const last = el("td", { class: "last" }, ACTION[group.action] || group.action);
      last.appendChild(el("span", { class: "detail" }, age + " s ago"));
      tr.appendChild(last);
      rows.push(tr);
    }
    if (rows.length) body.replaceChildren(...rows);
    // swatch colours: SVG-safe attribute then CSSOM (allowed by the page's CSP)
    for (const swatch of body.querySelectorAll(".swatch")) swatch.style.background = swatch.getAttribute("data-color");
  }

  // -- charts -------------------------------------------------------------------------

  // A round step (1, 2, 2.5 or 5 x 10^k) giving about ``ticks`` intervals up to ``value``.
  function niceScale(value, ticks) {
    const raw = Math.max(value, 1e-9) / ticks;
    const exp = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = 10 * exp;
    for (const m of [1, 2, 2.5, 5, 10]) {
      if (m * exp >= raw) {
        step = m * exp;
        break;
      }
    }
    return { step: step, max: step * Math.max(1, Math.ceil(value / step - 1e-9)) };
  }

  function durationUnit(maxSeconds) {
    if (maxSeconds >= 3 * 3600) return { div: 3600, label: "hours" };
    if (maxSeconds >= 180) return { div: 60, label: "minutes" };
    return { div: 1, label: "seconds" };
  }

  function timeStep(span) {
    for (const step of [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]) {
      if (span / step <= 5) return step;
    }
    return 14400;
  }

  function drawChart(node, stat, groups, series) {
    const spec = CHARTS[stat];
    const index = FIELD_INDEX[stat];
    const x0 = M.left;
    const x1 = W - M.right;
    const y0 = H - M.bottom;
    const y1 = M.top;
    let tMin = Infinity;
    let tMax = -Infinity;
    let vMax = 0;
    let total = 0;
    for (const group of groups) {
      for (const point of series[group.dbid] || []) {
        tMin = Math.min(tMin, point[0]);
        tMax = Math.max(tMax, point[0]);
        if (point[index] !== null) vMax = Math.max(vMax, point[index]);
      }
    }
    const parts = [];
    if (!isFinite(tMin)) {
      parts.push(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "nodata" }, "waiting for data…"));
      node.replaceChildren(...parts);
      node.setAttribute("data-points", "0");
      return;
    }
    if (tMax - tMin < 30) tMax = tMin + 30;
    let scale;
    let unit = null;
    if (spec.kind === "fraction") {
      scale = spec.max !== null ? { step: spec.max / 4, max: spec.max } : niceScale(Math.min(1, Math.max(vMax, 0.02)), 4);
    } else {
      unit = durationUnit(vMax);
      const inUnit = niceScale(Math.max(vMax / unit.div, 1), 4);
      scale = { step: inUnit.step * unit.div, max: inUnit.max * unit.div };
    }
    const yMax = scale.max;
    const sx = (t) => x0 + ((t - tMin) / (tMax - tMin)) * (x1 - x0);
    const sy = (v) => y0 - (v / yMax) * (y0 - y1);

    // y grid and ticks
    const yTicks = Math.round(scale.max / scale.step);
    for (let i = 0; i <= yTicks; i++) {
      const v = scale.step * i;
      const y = sy(v);
      parts.push(svg("line", { x1: x0, x2: x1, y1: y, y2: y, class: i === 0 ? "axis" : "gridline" }));
      let label;
      if (spec.kind === "fraction") {
        const p = Math.round(v * 1000) / 10;
        label = (Number.isInteger(p) ? p.toFixed(0) : p.toFixed(1)) + "%";
      } else {
        const u = Math.round((v / unit.div) * 10) / 10;
        label = Number.isInteger(u) ? String(u) : u.toFixed(1);
      }
      parts.push(svg("text", { x: x0 - 6, y: y + 3.5, "text-anchor": "end", class: "tick" }, label));
    }
    parts.push(svg("line", { x1: x0, x2: x0, y1: y0, y2: y1, class: "axis" }));
    parts.push(svg("text", { x: 2, y: 10, "text-anchor": "start", class: "axis-label" }, "y: " + (spec.kind === "fraction" ? "percent" : unit.label)));

    // x ticks on a round time grid
    const step = timeStep(tMax - tMin);
    for (let t = Math.ceil(tMin / step) * step; t <= tMax; t += step) {
      const x = sx(t);
      parts.push(svg("line", { x1: x, x2: x, y1: y0, y2: y0 + 4, class: "axis" }));
      const anchor = x > x1 - 24 ? "end" : x < x0 + 24 ? "start" : "middle";
      parts.push(svg("text", { x: x, y: y0 + 15, "text-anchor": anchor, class: "tick" }, clock(t, step < 60)));
    }
    parts.push(svg("text", { x: x1, y: 10, "text-anchor": "end", class: "axis-label" }, "x: local time"));

    // one line per group, broken where the statistic is null
    for (const group of groups) {
      const points = series[group.dbid] || [];
      let d = "";
      let pen = false;
      let count = 0;
      let last = null;
      for (const point of points) {
        const value = point[index];
        if (value === null) {
          pen = false;
          continue;
        }
        const x = sx(point[0]).toFixed(1);
        const y = sy(Math.min(value, yMax)).toFixed(1);
        d += (pen ? "L" : "M") + x + " " + y + " ";
        pen = true;
        count += 1;
        last = [x, y];
      }
      total += count;
      const color = colorOf.get(group.dbid);
      const path = svg("path", { d: d.trim() || "M0 0", class: "line", stroke: color, "data-dbid": group.dbid, "data-points": count });
      if (!count) path.setAttribute("visibility", "hidden");
      parts.push(path);
      if (last) parts.push(svg("circle", { cx: last[0], cy: last[1], r: 3, fill: color }));
    }
    node.replaceChildren(...parts);
    node.setAttribute("data-points", String(total));
  }

  function renderLegend(groups) {
    const legend = document.getElementById("legend");
    const items = groups.map((group) => {
      const item = el("span", { class: "item" });
      const key = el("span", { class: "key" });
      key.style.background = colorOf.get(group.dbid);
      item.appendChild(key);
      item.appendChild(document.createTextNode(group.name));
      return item;
    });
    legend.replaceChildren(...items);
  }

  // -- the feed -------------------------------------------------------------------------

  function renderFeed(id, feed) {
    const list = document.getElementById(id);
    if (!feed.length) {
      list.replaceChildren(el("li", { class: "empty" }, "No message yet."));
      return;
    }
    const items = feed.map((entry) => {
      const periodic = entry.action === 0;
      const li = el("li", { class: (periodic ? "periodic " : "") + (entry.valid ? "valid" : "invalid"), "data-seq": entry.seq });
      const at = entry.at !== null && !isNaN(Number(entry.at)) ? Number(entry.at) : entry.received;
      li.appendChild(el("span", { class: "time" }, clock(at)));
      const what = el("span", { class: "what" });
      const detail = el("span", { class: "sub" });
      if (entry.group !== null) {
        what.textContent = entry.group;
        const action = ACTION[entry.action] !== undefined ? ACTION[entry.action] : "action " + entry.action;
        let text = action;
        if (!periodic && entry.actor !== null) text += " by " + (ACTOR[entry.actor] || entry.actor);
        if (entry.status !== null) text += " → " + (STATUS[entry.status] || entry.status);
        if (entry.dial_mode !== null) text += " · " + (DIAL_MODE[entry.dial_mode] || entry.dial_mode);
        const stats = [];
        if (entry.busy_factor !== null) stats.push("busy " + pct(entry.busy_factor, 0));
        if (entry.hit_ratio !== null) stats.push("hit " + pct(entry.hit_ratio, 0));
        if (stats.length) text += " · " + stats.join(" ");
        detail.textContent = text;
      } else {
        what.textContent = "HTTP " + entry.http_status;
        detail.textContent = "no readable CampaignGroupState body";
      }
      li.appendChild(what);
      const badge = el("span", { class: "badge " + (entry.valid ? "verdict-valid" : "verdict-invalid"), title: "HTTP " + entry.http_status },
        entry.valid ? "✓ valid" : "✗ refused " + entry.http_status);
      li.appendChild(badge);
      li.appendChild(detail);
      if (!entry.valid) {
        const error = el("span", { class: "error" });
        error.appendChild(el("span", { class: "rule" }, entry.rule));
        error.appendChild(document.createTextNode(" " + (entry.field ? entry.field + ": " : "") + entry.error));
        li.appendChild(error);
      }
      return li;
    });
    list.replaceChildren(...items);
  }

  // -- polling --------------------------------------------------------------------------

  function render(state) {
    const groups = state.groups || [];
    assignColors(groups);
    document.getElementById("count-groups").textContent = String(groups.length);
    document.getElementById("count-valid").textContent = String(state.accepted);
    document.getElementById("count-refused").textContent = String(state.refused);
    if (groups.length) renderGroups(groups, state.now);
    renderLegend(groups);
    for (const stat of Object.keys(CHARTS)) {
      drawChart(document.getElementById("chart-" + stat), stat, groups, state.series || {});
    }
    renderFeed("feed", state.feed || []);
    const refusals = state.refusals || [];
    document.getElementById("refusals-box").hidden = refusals.length === 0;
    if (refusals.length) renderFeed("refusals", refusals);
    document.body.setAttribute("data-updates", String(Number(document.body.getAttribute("data-updates") || 0) + 1));
  }

  function setConnection(ok, text) {
    const node = document.getElementById("connection");
    node.className = "connection " + (ok ? "live" : "down");
    node.textContent = text;
  }

  async function poll() {
    try {
      const response = await fetch("/api/state", { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const state = await response.json();
      render(state);
      setConnection(true, "live · " + clock(state.now));
    } catch (error) {
      setConnection(false, "disconnected: " + error.message);
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
