// Supervisor wallboard: live figures from /ws/supervisor/ (a `wallboard` frame every 2 s),
// teller presence and alerts as they happen, and two actions: set a teller's presence, and
// send a waiting call to a named teller. The chart is inline SVG drawn here (no library).

import { lang, pick, t } from "./i18n.js";
import { Signaling } from "./signaling.js";

const SVG = "http://www.w3.org/2000/svg";
const STATES = ["available", "offered", "busy", "wrap_up", "break", "offline"];
const MAX_ALERTS = 50;

const root = document.querySelector("[data-wallboard]");
const TARGET = Number(root.dataset.target) || 0.8;
const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const $$ = (selector) => document.querySelector(selector);

const locale = lang === "en" ? "en" : "zh-CN";
const percent = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 });
const integer = new Intl.NumberFormat(locale);

const signaling = new Signaling("/ws/supervisor/");
const updated = $("wallboard-updated");
const moveForm = $("move-call");
const moveCall = $("move-call-call");
const moveTeller = $("move-call-teller");
const presenceForm = $("set-presence");
const presenceTeller = $("set-presence-teller");
const presenceStatus = $("set-presence-status");
const presenceReason = $("set-presence-reason");
const actionResult = $("action-result");
const alerts = $("wallboard-alerts");

let latest = null; // the last wallboard frame
const pending = new Map(); // message id -> what the supervisor asked, for errors and acks

// --- formatting -------------------------------------------------------------------------------

const dash = () => t("wallboard.no_data");
const pct = (value) => (value === null || value === undefined ? dash() : percent.format(value));
const secs = (value) =>
  value === null || value === undefined ? dash() : t("wallboard.seconds", { n: integer.format(Math.round(value)) });

/** 45 → "0:45", 125 → "2:05", 3725 → "1:02:05". */
function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/** `t(key)` if the table has it, else `fallback`. */
function known(key, fallback) {
  const text = t(key);
  return text === key ? fallback : text;
}

const stateText = (status) => known(`wallboard.state.${status}`, status);
const reasonText = (reason) => (reason ? known(`wallboard.reason.${reason}`, reason) : "");

function cell(tag, text, className) {
  const element = document.createElement(tag);
  element.textContent = text;
  if (className) element.className = className;
  if (tag === "th") element.scope = "row";
  return element;
}

function setText(selector, text) {
  const element = typeof selector === "string" ? $$(selector) : selector;
  if (element && element.textContent !== text) element.textContent = text;
}

// --- tiles ------------------------------------------------------------------------------------

function renderTiles(frame) {
  const o = frame.overall;
  const threshold = frame.threshold_s;
  setText($("wallboard-waiting"), integer.format(o.waiting));
  setText($("wallboard-longest"), duration(o.longest_wait_s));
  $$('[data-tile="longest"]').dataset.state = o.longest_wait_s > threshold ? "warn" : "ok";
  setText("[data-threshold-note]", t("wallboard.longest_sub", { s: threshold }));

  const sl = $("wallboard-sl");
  setText(sl, pct(o.service_level));
  const slTile = $$('[data-tile="sl"]');
  const met = o.service_level === null ? "none" : o.service_level >= TARGET ? "met" : "below";
  slTile.dataset.state = met;
  sl.dataset.value = o.service_level ?? "";
  setText("[data-sl-sub]", t("wallboard.sl_sub", { s: threshold, target: percent.format(TARGET) }));
  setText("[data-sl-flag]", met === "none" ? "" : t(met === "met" ? "wallboard.sl_met" : "wallboard.sl_below"));
  slTile.querySelector(".tile-meter-bar").style.width = `${Math.round((o.service_level || 0) * 100)}%`;
  slTile.querySelector(".tile-meter-target").style.left = `${TARGET * 100}%`;

  setText($("wallboard-sl2"), pct(o.service_level_2));
  setText("[data-sl2-sub]", t("wallboard.sl2_sub", { s: threshold }));
  setText($("wallboard-asa"), secs(o.asa_s));
  $$('[data-tile="asa"]').dataset.state = o.asa_s !== null && o.asa_s > threshold ? "warn" : "ok";
  setText("[data-asa-sub]", t("wallboard.asa_sub", { n: o.answered }));
  setText($("wallboard-abandon"), pct(o.abandon_rate));
  setText("[data-abandon-sub]", t("wallboard.abandon_sub", { n: o.abandoned }));
}

// --- tables -----------------------------------------------------------------------------------

function renderBusinesses(frame) {
  const body = $("wallboard-businesses").tBodies[0];
  body.replaceChildren(
    ...frame.businesses.map((b) => {
      const row = document.createElement("tr");
      row.dataset.business = b.business;
      if (b.waiting) row.dataset.waiting = "";
      row.append(
        cell("th", pick(b.name) || b.business),
        cell("td", integer.format(b.waiting), "num"),
        cell("td", b.waiting ? duration(b.longest_wait_s) : dash(), "num"),
        cell("td", integer.format(b.answered), "num"),
        cell("td", integer.format(b.abandoned), "num"),
        cell("td", pct(b.service_level), "num"),
        cell("td", pct(b.service_level_2), "num"),
        cell("td", secs(b.asa_s), "num"),
        cell("td", pct(b.abandon_rate), "num"),
      );
      return row;
    }),
  );
}

function renderTellers(frame) {
  const counts = frame.tellers_by_state || {};
  $$("[data-state-counts]").replaceChildren(
    ...STATES.map((status) => {
      const item = document.createElement("li");
      item.dataset.state = status;
      const count = document.createElement("strong");
      count.textContent = integer.format(counts[status] || 0);
      item.append(count, ` ${stateText(status)}`);
      return item;
    }),
  );
  renderTellerRows(frame.tellers);
}

function renderTellerRows(tellers) {
  const body = $("wallboard-tellers").tBodies[0];
  body.replaceChildren(
    ...tellers.map((teller) => {
      const row = document.createElement("tr");
      row.dataset.teller = teller.teller;
      row.dataset.state = teller.status;
      const state = cell("td", "");
      const dot = document.createElement("span");
      dot.className = "state-dot";
      dot.setAttribute("aria-hidden", "true");
      state.append(dot, stateText(teller.status));
      row.append(
        cell("th", teller.teller),
        state,
        cell("td", duration(teller.since_s), "num"),
        cell("td", teller.status === "break" ? reasonText(teller.reason) : ""),
      );
      return row;
    }),
  );
  $$("[data-tellers-empty]").hidden = tellers.length > 0;
}

function callLabel(call) {
  return `${pick(call.business_name) || call.business} · ${duration(call.waited_s)} · ${call.call_id.slice(0, 8)}`;
}

function renderWaitingCalls(frame) {
  const calls = frame.waiting_calls || [];
  const body = $("wallboard-waiting-calls").tBodies[0];
  body.replaceChildren(
    ...calls.map((call) => {
      const row = document.createElement("tr");
      row.dataset.callId = call.call_id;
      const waited = duration(call.waited_s) + (call.status === "offered" ? ` · ${t("wallboard.ringing")}` : "");
      const action = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button-quiet";
      button.dataset.testid = "pick-call";
      button.dataset.callId = call.call_id;
      button.textContent = t("wallboard.pick");
      button.setAttribute("aria-label", t("wallboard.pick_label", { call: callLabel(call) }));
      action.append(button);
      row.append(
        cell("th", pick(call.business_name) || call.business),
        cell("td", priorityText(call)),
        cell("td", waited, "num"),
        cell("td", call.preferred_teller || ""),
        action,
      );
      return row;
    }),
  );
  $$("[data-calls-empty]").hidden = calls.length > 0;
  const more = frame.waiting_calls_more || 0;
  const moreText = $("wallboard-waiting-more");
  moreText.dataset.more = String(more);
  moreText.textContent = more ? t("console.more_waiting", { n: more }) : "";
  moreText.hidden = more === 0;
}

function priorityText(call) {
  // Elderly/accessibility is the customer's claim until the identity check confirms it.
  const words = known(`wallboard.priority.${call.priority}`, String(call.priority));
  const claim = call.priority_claim;
  return claim === "claimed" || claim === "confirmed" ? `${words} (${t(`priority.${claim}`)})` : words;
}

// --- selects that survive a refresh every 2 s ---------------------------------------------------

/** Make `select`'s options (after the first, "Choose…") match `items` ([value, label]) without
 * disturbing the current choice or a keyboard user in the middle of picking. */
function syncOptions(select, items) {
  const current = select.value;
  const options = Array.from(select.options).slice(1);
  const same = options.length === items.length && options.every((o, i) => o.value === items[i][0]);
  if (same) {
    options.forEach((option, i) => {
      if (option.textContent !== items[i][1]) option.textContent = items[i][1];
    });
    return;
  }
  for (const option of options) option.remove();
  for (const [value, label] of items) select.add(new Option(label, value));
  select.value = items.some(([value]) => value === current) ? current : "";
}

function renderChoices(frame) {
  const tellers = frame.tellers.map((teller) => [
    teller.teller,
    `${teller.teller} (${stateText(teller.status)})`,
  ]);
  syncOptions(moveTeller, tellers);
  syncOptions(presenceTeller, tellers);
  syncOptions(
    moveCall,
    (frame.waiting_calls || []).map((call) => [call.call_id, callLabel(call)]),
  );
  updateButtons();
}

function updateButtons() {
  const open = signaling.open;
  $("move-call-submit").disabled = !open || !moveCall.value || !moveTeller.value;
  $("set-presence-submit").disabled = !open || !presenceTeller.value;
  presenceReason.disabled = presenceStatus.value !== "break";
}

// --- chart ------------------------------------------------------------------------------------

function svg(tag, attributes = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

const hourLabel = (hour) => `${String(hour).padStart(2, "0")}:00`;

function renderChart(frame) {
  const figure = $("wallboard-chart");
  const canvas = figure.querySelector("[data-chart-canvas]");
  const byHour = new Map((frame.service_level_by_hour || []).map((h) => [h.hour, h]));
  const hours = [...byHour.keys()];
  figure.dataset.hours = String(hours.length);
  renderChartTable(frame.service_level_by_hour || []);
  if (!hours.length) {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = t("wallboard.chart_empty");
    canvas.replaceChildren(empty);
    return;
  }
  const first = Math.min(...hours);
  const last = Math.max(...hours);
  const slots = Array.from({ length: last - first + 1 }, (_, i) => first + i);

  const width = 640;
  const height = 260;
  const margin = { top: 14, right: 44, bottom: 30, left: 46 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const band = plotW / slots.length;
  const barW = Math.min(48, band * 0.6);
  const y = (value) => margin.top + plotH * (1 - value);

  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": "chart-svg-title chart-svg-desc",
    class: "chart-svg",
    "data-testid": "wallboard-chart-svg",
  });
  chart.append(
    svg("title", { id: "chart-svg-title" }, t("wallboard.chart")),
    svg("desc", { id: "chart-svg-desc" }, t("wallboard.chart_desc", { target: percent.format(TARGET) })),
  );
  const grid = svg("g", { class: "chart-grid" });
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    grid.append(
      svg("line", { x1: margin.left, x2: width - margin.right, y1: y(tick), y2: y(tick) }),
      svg("text", { x: margin.left - 6, y: y(tick) + 4, "text-anchor": "end" }, percent.format(tick)),
    );
  }
  chart.append(grid);

  const bars = svg("g", { class: "chart-bars" });
  const dots = svg("g", { class: "chart-sl2" });
  const labels = svg("g", { class: "chart-hours" });
  const every = slots.length > 12 ? 2 : 1;
  slots.forEach((hour, i) => {
    const centre = margin.left + band * (i + 0.5);
    const figures = byHour.get(hour);
    if (i % every === 0) {
      labels.append(svg("text", { x: centre, y: height - 10, "text-anchor": "middle" }, String(hour).padStart(2, "0")));
    }
    if (!figures) return;
    const summary = t("wallboard.chart_bar", {
      hour: hourLabel(hour),
      sl: pct(figures.service_level),
      sl2: pct(figures.service_level_2),
      answered: figures.answered,
      abandoned: figures.abandoned,
    });
    if (figures.service_level !== null) {
      const value = figures.service_level;
      const bar = svg("rect", {
        x: centre - barW / 2,
        y: y(value),
        width: barW,
        height: Math.max(1, plotH * value),
        rx: 3,
        "data-hour": hour,
        "data-state": value >= TARGET ? "met" : "below",
      });
      bar.append(svg("title", {}, summary));
      bars.append(bar);
    }
    if (figures.service_level_2 !== null) {
      const dot = svg("circle", { cx: centre, cy: y(figures.service_level_2), r: 5, "data-hour": hour });
      dot.append(svg("title", {}, summary));
      dots.append(dot);
    }
  });
  const target = svg("g", { class: "chart-target" });
  target.append(
    svg("line", { x1: margin.left, x2: width - margin.right, y1: y(TARGET), y2: y(TARGET) }),
    svg("text", { x: width - margin.right + 6, y: y(TARGET) + 4 }, percent.format(TARGET)),
  );
  chart.append(bars, target, dots, labels);
  canvas.replaceChildren(chart);
}

function renderChartTable(rows) {
  $$("[data-chart-rows]").replaceChildren(
    ...rows.map((h) => {
      const row = document.createElement("tr");
      row.append(
        cell("th", hourLabel(h.hour)),
        cell("td", pct(h.service_level), "num"),
        cell("td", pct(h.service_level_2), "num"),
        cell("td", integer.format(h.answered), "num"),
        cell("td", integer.format(h.abandoned), "num"),
      );
      return row;
    }),
  );
}

// --- alerts and action feedback ---------------------------------------------------------------

function addAlert(text, kind) {
  const item = document.createElement("li");
  item.dataset.kind = kind;
  const time = document.createElement("time");
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString(locale, { hour12: false });
  item.append(time, " ", text);
  alerts.prepend(item);
  while (alerts.children.length > MAX_ALERTS) alerts.lastElementChild.remove();
  $$("[data-alerts-empty]").hidden = true;
}

function showResult(text, state) {
  actionResult.dataset.state = state;
  actionResult.textContent = text;
}

function errorText(message) {
  return known(`error.${message.code}`, message.detail || t("error.generic"));
}

// --- socket -----------------------------------------------------------------------------------

signaling.on("wallboard", (frame) => {
  latest = frame;
  renderTiles(frame);
  renderBusinesses(frame);
  renderTellers(frame);
  renderWaitingCalls(frame);
  renderChoices(frame);
  renderChart(frame);
  updated.dataset.state = "live";
  updated.textContent = t("wallboard.updated", {
    time: new Date(frame.at).toLocaleTimeString(locale, { hour12: false }),
  });
});

signaling.on("teller.presence", (message) => {
  // Between two wallboard frames, show the change at once.
  if (latest) {
    const tellers = latest.tellers.filter((teller) => teller.teller !== message.teller);
    tellers.push({ teller: message.teller, status: message.status, reason: message.reason, since_s: 0 });
    tellers.sort((a, b) => a.teller.localeCompare(b.teller));
    latest.tellers = tellers;
    renderTellerRows(tellers);
  }
  for (const [id, asked] of pending) {
    if (asked.kind === "presence" && asked.teller === message.teller && asked.status === message.status) {
      pending.delete(id);
      showResult(
        t("wallboard.presence_done", { teller: message.teller, status: stateText(message.status) }),
        "ok",
      );
    }
  }
  if (message.by && message.by !== signaling.hello?.user?.username) {
    addAlert(
      t("wallboard.alert.presence_by", { by: message.by, teller: message.teller, status: stateText(message.status) }),
      "presence",
    );
  }
});

signaling.on("supervisor.alert", (message) => {
  const text =
    message.kind === "auto_break"
      ? t("wallboard.alert.auto_break", { teller: message.teller, n: message.missed_offers })
      : t("wallboard.alert.other", { teller: message.teller || "", kind: message.kind });
  addAlert(text, message.kind);
});

signaling.on("error", (message) => {
  if (message.ref && pending.has(message.ref)) pending.delete(message.ref);
  showResult(t("wallboard.action_error", { detail: errorText(message) }), "error");
});

signaling.on("socket.closed", (message) => {
  if (message.code === 4403) {
    updated.dataset.state = "refused";
    updated.textContent = t("wallboard.refused");
  }
  updateButtons();
});
signaling.on("socket.lost", () => {
  updated.dataset.state = "lost";
  updateButtons();
});
signaling.on("socket.restored", updateButtons);

// --- actions ----------------------------------------------------------------------------------

for (const select of [moveCall, moveTeller, presenceTeller, presenceStatus]) {
  select.addEventListener("change", updateButtons);
}

moveForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!moveCall.value || !moveTeller.value) return;
  const teller = moveTeller.value;
  const id = signaling.send("call.move", { call_id: moveCall.value, teller });
  pending.set(id, { kind: "move", teller });
  // No acknowledgement frame: success shows on the next wallboard frame ("Sent to").
  showResult(t("wallboard.moved", { teller }), "ok");
});

presenceForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!presenceTeller.value) return;
  const fields = { teller: presenceTeller.value, status: presenceStatus.value };
  if (fields.status === "break") fields.reason = presenceReason.value;
  const id = signaling.send("presence.set_for", fields);
  pending.set(id, { kind: "presence", ...fields });
});

$("wallboard-waiting-calls").addEventListener("click", (event) => {
  const button = event.target.closest('[data-testid="pick-call"]');
  if (!button) return;
  moveCall.value = button.dataset.callId;
  updateButtons();
  moveTeller.focus();
});

updateButtons();
signaling.connect().then(updateButtons, updateButtons);
