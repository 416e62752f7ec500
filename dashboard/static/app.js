// The jobpipe dashboard: plain JS, no build step, nothing loaded from elsewhere.
// Polls /ui/api/stats, keeps a short history per queue for the sparklines, and
// sends the operator's actions to the JSON endpoints with the bearer token.
"use strict";

const params = new URLSearchParams(location.search);
const INTERVAL_MS = Math.max(200, Number(params.get("interval_ms")) || 2000);
const HISTORY = Math.round(300000 / INTERVAL_MS);  // five minutes of points
const series = {};  // queue -> {backlog: [], done: []}

const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  sessionStorage.setItem("jobpipe-token", fragment.get("token"));
  window.history.replaceState(null, "", location.pathname + location.search);
}

const $ = (sel) => document.querySelector(sel);

function say(text, isError) {
  const status = $("#status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

async function api(method, path, body) {
  const headers = {"Content-Type": "application/json"};
  const token = sessionStorage.getItem("jobpipe-token");
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch("/ui/api/" + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = {error: response.statusText}; }
  if (response.status === 401) $("#token-form").hidden = false;
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function button(label, onClick, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (className) b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

function sparkline(points, title) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 160 28");
  svg.setAttribute("preserveAspectRatio", "none");
  const t = document.createElementNS(ns, "title");
  t.textContent = title;
  svg.appendChild(t);
  const line = document.createElementNS(ns, "polyline");
  const top = Math.max(1, ...points);
  const step = points.length > 1 ? 160 / (points.length - 1) : 0;  // widens to 5 min
  line.setAttribute("points", points.map((v, i) =>
    `${(i * step).toFixed(1)},${(26 - 24 * v / top).toFixed(1)}`).join(" "));
  svg.appendChild(line);
  svg.dataset.points = String(points.length);
  return svg;
}

function remember(queue, backlog, done) {
  const h = series[queue] || (series[queue] = {backlog: [], done: []});
  h.backlog.push(backlog);
  h.done.push(done);
  for (const key of ["backlog", "done"]) {
    if (h[key].length > HISTORY) h[key].shift();
  }
  return h;
}

const fmt = (n) => n === null || n === undefined ? "-" : Number(n).toLocaleString("en-US");
const rate = (r, key) => r ? r[key].toFixed(1) : "-";

function seconds(s) {
  if (s === null || s === undefined) return "-";
  return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`;
}

function latency(e2e, scraped) {
  if (!scraped) return "-";  // no --metrics given to `jobpipe dashboard`
  if (!e2e || !e2e.jobs) return "idle";
  return `${seconds(e2e.p50_s)} / ${seconds(e2e.p99_s)}`;
}

async function act(method, path, body) {
  try {
    const data = await api(method, path, body);
    say(data.message || "done");
    await refresh();
    return data;
  } catch (e) {
    say(e.message, true);
    return null;
  }
}

function fillSelect(select, names) {
  const current = select.value;
  if ([...select.options].map((o) => o.value).join() === names.join()) return;
  select.replaceChildren(...names.map((n) => new Option(n, n)));
  if (names.includes(current)) select.value = current;
}

// One row per queue, made once and updated in place, so a button is never
// replaced under the operator's pointer by a refresh.
const QUEUE_CELLS = ["name", "backlog num", "lag num", "in num", "done num", "e2e num",
                     "dlq num", "graphs", "state", "act"];

function queueRow(body, name) {
  for (const row of body.rows) if (row.dataset.queue === name) return row;
  const row = body.insertRow();
  row.dataset.queue = name;
  for (const className of QUEUE_CELLS) row.insertCell().className = className;
  row.cells[0].textContent = name;
  const toggle = button("Pause", () => act("POST", `queues/${name}/${toggle.className}`, {}),
                        "pause");
  row.cells[9].append(toggle);
  return row;
}

function renderQueues(doc) {
  const body = $("#queues tbody");
  for (const name of doc.queue_order) {
    const q = doc.queues[name];
    const lag = Object.values(q.kafka.lag_total).reduce((a, b) => a + b, 0);
    const h = remember(name, q.redis.backlog, q.rates ? q.rates.completed_per_s : 0);
    const cells = queueRow(body, name).cells;
    cells[1].textContent = fmt(q.redis.backlog);
    cells[1].title = `ready ${q.redis.ready}, delayed ${q.redis.delayed}, ` +
      `in flight ${q.redis.inflight}, parked ${q.redis.parked}, dead ${q.redis.dead}`;
    cells[2].textContent = fmt(lag);
    cells[3].textContent = rate(q.rates, "bridged_per_s");
    cells[4].textContent = rate(q.rates, "completed_per_s");
    cells[5].textContent = latency(q.e2e, doc.metrics_scraped);
    cells[6].textContent = fmt(q.kafka.dlq_size);
    cells[7].replaceChildren(sparkline(h.done, "done/s"), sparkline(h.backlog, "backlog"));
    const paused = [q.paused ? "queue" : "", ...q.paused_tenants.map((t) => "tenant " + t)]
      .filter(Boolean).join(", ");
    cells[8].textContent = paused;
    cells[8].classList.toggle("paused", Boolean(paused));
    const toggle = cells[9].firstChild;
    toggle.className = q.paused ? "resume" : "pause";
    toggle.textContent = q.paused ? "Resume" : "Pause";
  }
  fillSelect($("#tenant-queue"), doc.queue_order);
  fillSelect($("#dlq-queue"), doc.queue_order);
}

function renderLiveness(doc) {
  const bridges = $("#bridges tbody");
  bridges.replaceChildren();
  for (const b of doc.bridges) {
    const row = bridges.insertRow();
    cell(row, b.id);
    cell(row, b.alive ? "alive" : "presumed dead", b.alive ? "alive" : "dead");
    cell(row, `${b.seconds_ago}s ago`);
  }
  if (!doc.bridges.length) cell(bridges.insertRow(), "no bridge has heartbeated", "muted");
  const workers = $("#workers tbody");
  workers.replaceChildren();
  for (const w of doc.workers) {
    const row = workers.insertRow();
    cell(row, w.client_id);
    cell(row, w.host);
    cell(row, w.in_group ? "in group" : "not in group", w.in_group ? "alive" : "dead");
    cell(row, String(w.partitions), "num");
    cell(row, w.seconds_ago === null ? "-" : `${w.seconds_ago}s ago`, "beat");
  }
  if (!doc.workers.length) {
    cell(workers.insertRow(), doc.workers_error || "no worker in the group", "muted");
  }
}

async function refresh() {
  try {
    const doc = await api("GET", "stats");
    $("#namespace").textContent = doc.namespace;
    renderQueues(doc);
    renderLiveness(doc);
    $("#metrics-errors").textContent = doc.metrics_errors.length
      ? "workers' metrics not read: " + doc.metrics_errors.join("; ") : "";
    $("#updated").textContent = "updated " + new Date(doc.time * 1000).toLocaleTimeString();
    $("#updated").dataset.time = String(doc.time);
  } catch (e) {
    say(e.message, true);
  }
}

async function browseDlq() {
  const queue = $("#dlq-queue").value;
  if (!queue) return;
  const body = $("#dlq tbody");
  try {
    const data = await api("GET", `queues/${queue}/dlq`);
    body.replaceChildren();
    for (const r of data.records) {
      const row = body.insertRow();
      row.dataset.ref = r.ref;
      cell(row, r.ref);
      cell(row, r.time);
      cell(row, r.job_id || "(not a job)");
      cell(row, r.task || "");
      cell(row, r.reason);
      cell(row, r.error);
      cell(row, r.attempts === null ? "" : String(r.attempts), "num");
      const actions = row.insertCell();
      actions.append(button("Show", () => showDlq(queue, r.ref), "show"));
      if (r.job_id && !r.replayed) {
        actions.append(button("Replay", async () => {
          await act("POST", `queues/${queue}/dlq/replay`, {refs: [r.ref]});
          await browseDlq();
        }, "replay"));
      } else if (r.replayed) {
        actions.append(document.createTextNode(" replayed"));
      }
    }
    if (!data.records.length) cell(body.insertRow(), "no dead letters", "muted");
    $("#dlq").dataset.loaded = queue;
  } catch (e) {
    say(e.message, true);
  }
}

async function showDlq(queue, ref) {
  try {
    const record = await api("GET", `queues/${queue}/dlq/${encodeURIComponent(ref)}`);
    const pre = $("#dlq-detail");
    pre.textContent = JSON.stringify(record, null, 2);
    pre.hidden = false;
    pre.scrollIntoView({block: "nearest"});
  } catch (e) {
    say(e.message, true);
  }
}

function tenantAction(verb) {
  const tenant = $("#tenant-name").value.trim();
  if (!tenant) { say("name a tenant first", true); return; }
  act("POST", `queues/${$("#tenant-queue").value}/${verb}`, {tenant});
}

$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("jobpipe-token", $("#token").value);
  $("#token-form").hidden = true;
  say("");
  refresh();
});
$("#job-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = $("#job-id").value.trim();
  if (!id) { say("type a job id first", true); return; }
  const pre = $("#job-detail");
  try {
    pre.textContent = JSON.stringify(await api("GET", `jobs/${encodeURIComponent(id)}`), null, 2);
    pre.hidden = false;
    say("");
  } catch (e) {
    pre.hidden = true;
    say(e.message, true);
  }
});
$("#tenant-pause").addEventListener("click", () => tenantAction("pause"));
$("#tenant-resume").addEventListener("click", () => tenantAction("resume"));
$("#dlq-refresh").addEventListener("click", browseDlq);
$("#dlq-queue").addEventListener("change", browseDlq);
$("#dlq-purge").addEventListener("click", async () => {
  const queue = $("#dlq-queue").value;
  if (!confirm(`Delete every dead letter of ${queue}? This cannot be undone.`)) return;
  await act("POST", `queues/${queue}/dlq/purge`, {});
  await browseDlq();
});

refresh();
setInterval(refresh, INTERVAL_MS);
