/*
 * The dashboard's browser script, inlined into /lb-dashboard as it is (no
 * build step, no dependencies). It subscribes to /lb-events (Server-Sent
 * Events: a backlog on connect, then a point and the status every second),
 * redraws from each message, and when the stream ends or goes quiet says so
 * and reconnects, backing off up to 8 s.
 */
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const num = new Intl.NumberFormat("en");
  const WINDOW_NAMES = { 60: "minute", 300: "5 minutes" };
  const MARKS = { healthy: "✓", unhealthy: "✕", starting: "▲", draining: "▼", stopped: "■", failed: "!", yes: "✓", no: "✕", ejected: "◆", "half-open": "◇" };
  const COLUMNS = [
    ["id", "Instance"], ["state", "State"], ["healthy", "Healthy"], ["activeRequests", "In flight"], ["totalRequests", "Requests"],
    ["failedRequests", "Failures"], ["responseTime", "Response time"], ["load", "Load"], ["weight", "Weight"], ["restarts", "Restarts"], ["pid", "PID"],
  ];
  const QUIET_MS = 5000;

  let points = [];
  let capacity = 300;
  let status = null;
  let windowSeconds = 300;
  let source = null;
  let openedAt = 0;
  let lastMessage = 0;
  let retryTimer = 0;
  let retryMs = 1000;
  let downSince = 0;
  let downReason = "";

  // ---- the stream ----
  function connect() {
    retryTimer = 0;
    openedAt = Date.now();
    source = new EventSource("lb-events");
    source.addEventListener("hello", (event) => {
      const hello = JSON.parse(event.data);
      capacity = hello.capacity;
      points = hello.points;
      received(hello.status);
    });
    source.addEventListener("tick", (event) => {
      const tick = JSON.parse(event.data);
      points.push(tick.point);
      if (points.length > capacity) points.splice(0, points.length - capacity);
      received(tick.status);
    });
    source.addEventListener("bye", (event) => lost(JSON.parse(event.data).reason));
    source.addEventListener("error", () => lost(""));
  }

  function received(newStatus) {
    if (newStatus) status = newStatus;
    lastMessage = Date.now();
    retryMs = 1000;
    downSince = 0;
    downReason = "";
    showConnection();
    render();
  }

  function lost(reason) {
    if (source) source.close();
    source = null;
    if (!downSince) downSince = Date.now();
    if (reason) downReason = reason;
    if (!retryTimer) {
      retryTimer = setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 8000);
    }
    showConnection();
  }

  // A stream that stays silent (a hung balancer, a buffering proxy) counts as lost.
  setInterval(() => {
    if (source && Date.now() - Math.max(lastMessage, openedAt) > QUIET_MS) lost(`no update for ${QUIET_MS / 1000} s`);
  }, 1000);

  function showConnection() {
    const state = downSince ? "down" : lastMessage ? "live" : "connecting";
    const text =
      state === "live" ? "Live" : state === "down" ? `Disconnected: ${downReason || "the balancer does not answer"} (since ${clock(downSince)}). Reconnecting…` : "Connecting…";
    const box = $("connection");
    box.dataset.state = state;
    setText(box.querySelector(".mark"), state === "live" ? "●" : state === "down" ? "✕" : "…");
    setText($("connection-text"), text);
    document.body.classList.toggle("stale", state === "down");
    document.title = state === "down" ? "Fulcrum dashboard (disconnected)" : "Fulcrum dashboard";
  }

  // ---- rendering ----
  function render() {
    const last = points[points.length - 1];
    if (last) {
      setText($("rps"), rate(last.rps));
      setText($("p99"), ms(last.p99));
      setText($("inflight"), num.format(last.inflight));
    }
    if (status) {
      setText($("healthy"), `${status.healthy} of ${status.total}`);
      setText($("uptime"), duration(status.uptime));
      setText($("strategy"), status.strategy);
      renderScaling(status.scaling);
      renderInstances(status.instances);
      renderProcesses(status.workers);
    }
    renderCharts();
  }

  function renderScaling(s) {
    const managed = s.max > 0;
    setText($("scale-min"), managed ? String(s.min) : "–");
    setText($("scale-max"), managed ? String(s.max) : "–");
    setText($("scale-desired"), managed ? String(s.desired) : "–");
    setText($("scale-load"), managed ? s.load.toFixed(2) : "–");
    const a = s.lastAction;
    const text = a
      ? `${a.direction === "up" ? "▲ Up" : "▼ Down"} ${a.from} → ${a.to}: ${a.reason}. At ${clock(Date.parse(a.at))} (${ago(Date.parse(a.at))})`
      : managed ? "None yet" : "No managed instances: autoscaling is off";
    setText($("scale-last"), text);
  }

  function renderInstances(list) {
    const body = $("instances").tBodies[0];
    const rows = new Map([...body.rows].map((row) => [row.dataset.id, row]));
    list.forEach((instance, i) => {
      const row = rows.get(instance.id) ?? newRow(instance.id);
      rows.delete(instance.id);
      if (body.rows[i] !== row) body.insertBefore(row, body.rows[i] ?? null);
      fillRow(row, instance);
    });
    for (const row of rows.values()) row.remove();
    setText($("instance-count"), `(${list.length})`);
  }

  function newRow(id) {
    const row = document.createElement("tr");
    row.dataset.id = id;
    for (const [field, label] of COLUMNS) {
      const cell = document.createElement(field === "id" ? "th" : "td");
      if (field === "id") cell.scope = "row";
      if (field === "state" || field === "healthy") cell.className = "l";
      cell.dataset.field = field;
      cell.dataset.label = label;
      row.append(cell);
    }
    const name = row.cells[0];
    for (const part of ["id", "url", "tag"]) name.append(Object.assign(document.createElement("span"), { className: part }));
    return row;
  }

  function fillRow(row, b) {
    const cell = (field) => row.querySelector(`[data-field="${field}"]`);
    const id = cell("id");
    setText(id.querySelector(".id"), b.id);
    setText(id.querySelector(".url"), b.url);
    setText(id.querySelector(".tag"), b.managed ? "managed" : "static");
    badge(cell("state"), b.state, b.state);
    // Why a backend that probes call healthy takes no or little traffic: its circuit is open (ejected) or half-open (trials).
    const up = b.state === "healthy";
    const ejected = up && (b.circuit === "open" || !b.healthy);
    const trial = up && !ejected && b.circuit === "half-open";
    const key = ejected ? "ejected" : trial ? "half-open" : b.healthy ? "yes" : "no";
    badge(cell("healthy"), key, ejected ? "no (ejected)" : trial ? "trial (half-open)" : b.healthy ? "yes" : "no");
    setText(cell("activeRequests"), num.format(b.activeRequests));
    setText(cell("totalRequests"), num.format(b.totalRequests));
    setText(cell("failedRequests"), num.format(b.failedRequests));
    setText(cell("responseTime"), `${b.responseTime.toFixed(1)} ms`);
    setText(cell("load"), b.load.toFixed(2));
    setText(cell("weight"), String(b.weight));
    setText(cell("restarts"), String(b.restarts));
    setText(cell("pid"), b.pid === null ? "–" : String(b.pid));
  }

  /** A state as a word, a symbol and a colour: none of them alone carries the meaning. */
  function badge(cell, key, word) {
    let span = cell.firstElementChild;
    if (!span) {
      span = Object.assign(document.createElement("span"), { className: "state" });
      span.append(Object.assign(document.createElement("span"), { className: "mark", ariaHidden: "true" }), document.createElement("span"));
      cell.append(span);
    }
    span.dataset.state = key;
    setText(span.firstElementChild, MARKS[key] ?? "•");
    setText(span.lastElementChild, word);
  }

  function renderProcesses(workers) {
    const section = $("processes");
    section.hidden = !workers;
    if (!workers) return;
    const body = section.querySelector("tbody");
    while (body.rows.length > workers.length) body.lastElementChild.remove();
    workers.forEach((w, i) => {
      const row = body.rows[i] ?? body.insertRow();
      while (row.cells.length < 3) row.insertCell();
      setText(row.cells[0], w.index === 0 ? "primary" : `worker ${w.index}`);
      setText(row.cells[1], String(w.pid));
      setText(row.cells[2], num.format(w.totalRequests));
    });
  }

  // ---- charts: hand-written SVG, x in seconds across the window, y in 0..100 ----
  function renderCharts() {
    const end = points.length ? points[points.length - 1].t : Date.now();
    const start = end - windowSeconds * 1000;
    const shown = points.filter((p) => p.t > start);
    const last = shown[shown.length - 1];
    const peak = (key) => shown.reduce((m, p) => Math.max(m, p[key] ?? 0), 0);

    chart("chart-rps", start, [{ cls: "rps", area: true, values: shown.map((p) => [p.t, p.rps]) }], niceCeil(peak("rps"), 1), rate, [
      { key: "--rps", text: `now ${last ? rate(last.rps) : "–"}/s, peak ${rate(peak("rps"))}/s` },
    ]);
    chart("chart-p99", start, [{ cls: "p99", values: shown.map((p) => [p.t, p.p99]) }], niceCeil(peak("p99"), 1), ms, [
      { key: "--p99", text: `now ${ms(last ? last.p99 : null)}, peak ${ms(peak("p99") || null)}` },
    ]);

    const managed = status ? status.scaling.max > 0 : shown.some((p) => p.desired > 0);
    const [a, b] = managed ? ["desired", "running"] : ["total", "healthy"];
    const top = Math.max(1, managed && status ? status.scaling.max : 0, peak(a), peak(b));
    const whole = (v) => (Number.isInteger(v) ? String(v) : "");
    $("chart-instances").querySelector(".title").textContent = managed ? "Instances: desired and running" : "Backends: all and healthy";
    chart("chart-instances", start, [
      { cls: "running", step: true, values: shown.map((p) => [p.t, p[b]]) },
      { cls: "desired", step: true, values: shown.map((p) => [p.t, p[a]]) },
    ], top, whole, [
      { key: "--desired", dashed: true, text: `${managed ? "desired" : "all"} ${last ? last[a] : "–"}` },
      { key: "--running", text: `${managed ? "running" : "healthy"} ${last ? last[b] : "–"}` },
    ]);
  }

  function chart(id, start, lines, yMax, format, legend) {
    const figure = $(id);
    const svg = figure.querySelector("svg");
    svg.setAttribute("viewBox", `0 0 ${windowSeconds} 100`);
    const x = (t) => ((t - start) / 1000).toFixed(2);
    const y = (v) => (100 - (Math.min(v, yMax) / yMax) * 100).toFixed(2);
    let body = [0, 50, 100].map((g) => `<line class="grid" x1="0" x2="${windowSeconds}" y1="${g}" y2="${g}"/>`).join("");
    for (const line of lines) {
      let d = "";
      let open = false;
      let first = "";
      line.values.forEach(([t, v], i) => {
        if (v === null || v === undefined) return void (open = false);
        if (!open) {
          d += `M${x(t)} ${y(v)}`;
          first = x(t);
          // A lone point between gaps would draw nothing: give it half a second of width.
          const next = line.values[i + 1];
          if (!next || next[1] === null) d += "h0.5";
        } else d += line.step ? `H${x(t)}V${y(v)}` : `L${x(t)} ${y(v)}`;
        open = true;
      });
      if (line.area && d) body += `<path class="${line.cls}-area" d="${d}V100H${first}Z"/>`;
      body += `<path class="${line.cls}" d="${d}"/>`;
    }
    svg.innerHTML = body;
    const plot = figure.querySelector(".plot");
    for (const [cls, value] of [["top", yMax], ["mid", yMax / 2], ["bottom", 0]]) {
      let label = plot.querySelector(`.y.${cls}`);
      if (!label) plot.append((label = Object.assign(document.createElement("span"), { className: `y ${cls}` })));
      setText(label, value === 0 ? "0" : format(value));
    }
    const legendEl = figure.querySelector(".legend");
    legendEl.replaceChildren(...legend.map((item) => {
      const span = document.createElement("span");
      const key = Object.assign(document.createElement("span"), { className: item.dashed ? "key dashed" : "key" });
      key.style.setProperty("--k", `var(${item.key})`);
      span.append(key, item.text);
      return span;
    }));
    plot.setAttribute("aria-label", `${figure.querySelector(".title").textContent}, last ${WINDOW_NAMES[windowSeconds]}: ${legend.map((l) => l.text).join("; ")}`);
    setText(figure.querySelector(".x-start"), `${windowSeconds / 60} min ago`);
  }

  // ---- formatting ----
  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }
  function niceCeil(v, floor) {
    const top = Math.max(v, floor);
    const exp = 10 ** Math.floor(Math.log10(top));
    const f = top / exp;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * exp;
  }
  function rate(v) {
    return v >= 10 ? num.format(Math.round(v)) : num.format(Math.round(v * 10) / 10);
  }
  function ms(v) {
    if (v === null || v === undefined) return "–";
    return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v >= 10 ? Math.round(v) : v.toFixed(1)} ms`;
  }
  function duration(seconds) {
    const s = Math.floor(seconds);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }
  function clock(t) {
    return new Date(t).toLocaleTimeString("en-GB");
  }
  function ago(t) {
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    return s < 90 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
  }

  // ---- controls ----
  for (const button of document.querySelectorAll("[data-window]")) {
    button.addEventListener("click", () => {
      windowSeconds = Number(button.dataset.window);
      for (const other of document.querySelectorAll("[data-window]")) other.setAttribute("aria-pressed", String(other === button));
      setText($("window-label"), WINDOW_NAMES[windowSeconds]);
      renderCharts();
    });
  }

  connect();
})();
