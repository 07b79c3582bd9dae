// QA replay: both sides of a recorded call on one clock, with the call's timeline to seek by.
//
// The server verifies and decrypts each side into an MP4 whose time 0 is `start_ms` into the
// recording; the page keeps a single "recording time" (ms) and sets each video to
// (recording time - its start). The customer's video drives the clock; the teller's follows.

import { lang, pick, t } from "./i18n.js";

const config = JSON.parse(document.getElementById("qa-replay").textContent);
const root = document.querySelector("[data-qa-replay]");
const status = root.querySelector("[data-testid=replay-status]");
const playButton = root.querySelector("[data-testid=replay-play]");
const seek = root.querySelector("[data-testid=replay-seek]");
const clock = root.querySelector("[data-testid=replay-clock]");
const timeline = root.querySelector("[data-testid=replay-timeline]");
const videos = Object.fromEntries(
  [...root.querySelectorAll("video[data-side]")].map((v) => [v.dataset.side, v]),
);
const sides = {}; // side -> {video, start, duration}
let span = { from: 0, to: 0 };
let master = null;

function fmt(ms) {
  const total = Math.max(0, Math.round(ms / 1000));
  const m = Math.floor(total / 60);
  const s = String(total % 60).padStart(2, "0");
  return `${m}:${s}`;
}

function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

// --- watermark: who is looking, and when ------------------------------------------------------
const stamp = `${config.viewer} · ${new Date().toISOString().slice(0, 16).replace("T", " ")} · #${config.access}`;
for (const mark of root.querySelectorAll("[data-watermark]")) mark.textContent = stamp;
for (const video of Object.values(videos)) {
  video.addEventListener("contextmenu", (event) => event.preventDefault());
}

/** Clear `list`; when `items` is empty, say so in it (`key`) and answer true. */
function emptied(list, items, key) {
  list.replaceChildren();
  if (items.length) return false;
  const empty = document.createElement("li");
  empty.className = "empty";
  empty.textContent = t(key);
  list.append(empty);
  return true;
}

// --- timeline -----------------------------------------------------------------------------------
function describe(event) {
  const data = event.data || {};
  const key = `qa.kind.${event.kind}`;
  const label = t(key) === key ? event.kind : t(key); // t() answers the key for a kind it lacks
  const parts = [];
  if (data.business) parts.push(data.business);
  if (data.step) parts.push(data.step);
  if (data.status && event.kind === "business") parts.push(data.status);
  if (data.passed === true) parts.push(t("qa.passed"));
  if (data.passed === false) parts.push(t("qa.failed"));
  if (data.reason) parts.push(pick({ en: data.reason, zh: data.reason_zh }));
  if (data.kind && event.kind === "peripheral") parts.push(data.kind);
  return { label, detail: parts.join(" · ") };
}

function renderTimeline() {
  if (emptied(timeline, config.timeline, "qa.no_events")) return;
  for (const event of config.timeline) {
    const item = document.createElement("li");
    item.dataset.kind = event.kind;
    item.dataset.offset = String(event.offset_ms);
    if (event.data && event.data.masked) item.dataset.masked = event.data.masked;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "qa-event";
    button.dataset.testid = "replay-event";
    const { label, detail } = describe(event);
    const when = document.createElement("span");
    when.className = "qa-event-time";
    when.textContent = event.offset_ms < 0 ? `−${fmt(-event.offset_ms)}` : fmt(event.offset_ms);
    const what = document.createElement("span");
    what.className = "qa-event-kind";
    what.textContent = label;
    const who = document.createElement("span");
    who.className = "qa-event-actor";
    who.textContent = event.actor;
    button.append(when, what, who);
    if (detail) {
      const more = document.createElement("span");
      more.className = "qa-event-detail";
      more.textContent = detail;
      button.append(more);
    }
    if (event.data && event.data.masked === "start") {
      const note = document.createElement("span");
      note.className = "qa-event-masked";
      note.textContent = t("qa.masked");
      button.append(note);
    }
    button.setAttribute("aria-label", `${when.textContent} ${label} ${detail}`.trim());
    button.addEventListener("click", () => seekTo(Math.max(span.from, event.offset_ms), true));
    item.append(button);
    timeline.append(item);
  }
}

function markCurrentEvent(now) {
  let current = null;
  for (const item of timeline.querySelectorAll("li[data-offset]")) {
    // A seek lands on a frame, not to the millisecond: an event just ahead counts as reached.
    if (Number(item.dataset.offset) <= now + 100) current = item;
  }
  for (const item of timeline.querySelectorAll("li[aria-current]")) {
    if (item !== current) item.removeAttribute("aria-current");
  }
  if (current) current.setAttribute("aria-current", "step");
}

// --- the clock ----------------------------------------------------------------------------------
function now() {
  if (!master) return span.from;
  return master.video.currentTime * 1000 + master.start;
}

function place(side, at, force) {
  const target = Math.max(0, (at - side.start) / 1000);
  const within = at >= side.start && at <= side.start + side.duration;
  if (force || Math.abs(side.video.currentTime - target) > 0.3) {
    side.video.currentTime = Math.min(target, side.duration / 1000);
  }
  return within;
}

function seekTo(at, force) {
  for (const side of Object.values(sides)) place(side, at, force);
  update();
}

function update() {
  const at = now();
  seek.value = String(Math.round(at));
  clock.value = `${fmt(at - span.from)} / ${fmt(span.to - span.from)}`;
  noteTime.textContent = fmt(at);
  markCurrentEvent(at);
}

function follow() {
  const at = now();
  const playing = master && !master.video.paused;
  for (const side of Object.values(sides)) {
    if (side === master) continue;
    const within = place(side, at, false);
    if (playing && within && side.video.paused) side.video.play().catch(() => {});
    if ((!playing || !within) && !side.video.paused) side.video.pause();
  }
  update();
}

async function play() {
  if (!master) return;
  if (now() >= span.to - 50) seekTo(span.from, true);
  try {
    await master.video.play();
  } catch (error) {
    setStatus("error", t("qa.play_failed", { detail: error.message }));
    return;
  }
  follow();
}

function pause() {
  for (const side of Object.values(sides)) side.video.pause();
}

playButton.addEventListener("click", () => {
  if (master && !master.video.paused) pause();
  else play();
});
seek.addEventListener("input", () => seekTo(Number(seek.value), true));

function bindMaster() {
  const video = master.video;
  video.addEventListener("timeupdate", follow);
  video.addEventListener("seeked", follow);
  video.addEventListener("play", () => {
    playButton.textContent = t("qa.pause");
    follow();
  });
  video.addEventListener("pause", () => {
    playButton.textContent = t("qa.play");
    follow();
  });
  video.addEventListener("ended", () => {
    pause();
    playButton.textContent = t("qa.play");
  });
}

function loaded(video) {
  return new Promise((resolve, reject) => {
    if (video.readyState >= 1) return resolve();
    video.addEventListener("loadedmetadata", () => resolve(), { once: true });
    video.addEventListener("error", () => reject(new Error(video.error?.message || "media error")), {
      once: true,
    });
  });
}

async function start() {
  renderTimeline();
  setStatus("loading", t("qa.preparing"));
  let info;
  try {
    const response = await fetch(config.info, { credentials: "same-origin" });
    if (!response.ok) throw new Error((await response.text()) || response.statusText);
    info = await response.json();
  } catch (error) {
    setStatus("error", t("qa.load_failed", { detail: error.message }));
    return;
  }
  const problems = [];
  const waits = [];
  for (const [name, side] of Object.entries(info.sides)) {
    const video = videos[name];
    if (!side.ok) {
      problems.push(`${t(`qa.${name}`)}: ${pick({ en: side.error, zh: side.error_zh })}`);
      video.closest("figure").dataset.state = "unavailable";
      continue;
    }
    sides[name] = { video, start: side.start_ms, duration: side.duration_ms };
    video.src = config.sides[name];
    waits.push(loaded(video));
  }
  if (!Object.keys(sides).length) {
    setStatus("error", problems.join(" · ") || t("qa.nothing"));
    return;
  }
  try {
    await Promise.all(waits);
  } catch (error) {
    setStatus("error", t("qa.load_failed", { detail: error.message }));
    return;
  }
  master = sides.customer || sides.teller;
  span = {
    from: Math.min(...Object.values(sides).map((s) => s.start)),
    to: Math.max(...Object.values(sides).map((s) => s.start + s.duration)),
  };
  seek.min = String(span.from);
  seek.max = String(span.to);
  seek.disabled = false;
  playButton.disabled = false;
  bindMaster();
  seekTo(span.from, true);
  setStatus(problems.length ? "partial" : "ready", problems.length ? problems.join(" · ") : t("qa.ready"));
}

// --- process checks, review and notes ------------------------------------------------------------
const csrf = root.querySelector("[data-csrf]").value;
const checksList = root.querySelector("[data-testid=replay-checks]");
const reviewForm = root.querySelector("[data-testid=review-form]");
const reviewResult = root.querySelector("[data-testid=review-result]");
const reviewList = root.querySelector("[data-testid=review-list]");
const noteForm = root.querySelector("[data-testid=note-form]");
const noteText = root.querySelector("[data-testid=note-text]");
const noteTime = root.querySelector("[data-note-time]");
const noteResult = root.querySelector("[data-testid=note-result]");
const noteList = root.querySelector("[data-testid=note-list]");

function seekButton(offsetMs, children) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "qa-seek-link";
  button.append(...children);
  button.addEventListener("click", () => seekTo(Math.max(span.from, offsetMs), true));
  return button;
}

function renderChecks() {
  if (emptied(checksList, config.checks, "qa.checks_none")) return;
  for (const check of config.checks) {
    const item = document.createElement("li");
    item.dataset.check = check.key;
    item.dataset.ok = String(check.ok);
    const mark = document.createElement("span");
    mark.className = "qa-check-mark";
    mark.textContent = check.ok ? `✓ ${t("qa.check_ok")}` : `⚠ ${t("qa.check_bad")}`;
    const text = document.createElement("span");
    text.textContent = `${check.business} · ${t(`qa.check.${check.key}`)}`;
    const parts = [mark, text];
    if (check.offset_ms !== null) {
      const when = document.createElement("span");
      when.className = "qa-event-time";
      when.textContent = fmt(check.offset_ms);
      parts.unshift(when);
      item.append(seekButton(check.offset_ms, parts));
    } else {
      item.append(...parts);
    }
    checksList.append(item);
  }
}

function renderChecklist() {
  const holder = reviewForm.querySelector("[data-checklist]");
  for (const entry of config.checklist) {
    const group = document.createElement("div");
    group.className = "qa-checklist-item";
    group.setAttribute("role", "radiogroup");
    const label = document.createElement("span");
    label.id = `check-${entry.key}`;
    label.textContent = lang === "en" ? entry.en : entry.zh;
    group.setAttribute("aria-labelledby", label.id);
    group.append(label);
    for (const answer of ["yes", "no", "na"]) {
      const option = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = `check-${entry.key}`;
      input.value = answer;
      input.dataset.testid = `review-${entry.key}-${answer}`;
      option.append(input, ` ${t(`qa.answer.${answer}`)}`);
      group.append(option);
    }
    holder.append(group);
  }
}

function renderReviews() {
  if (emptied(reviewList, config.reviews, "qa.no_reviews")) return;
  for (const review of config.reviews) {
    const item = document.createElement("li");
    item.dataset.verdict = review.verdict;
    item.dataset.kind = review.kind;
    item.dataset.testid = "review-row";
    const score = review.score === null ? "—" : `${review.score}%`;
    const kind =
      review.kind === "override"
        ? `${t("qa.override")} (${t("qa.override_of", { id: review.overrides })}) · `
        : `#${review.id} · `;
    item.textContent = `${review.at.slice(0, 16).replace("T", " ")} · ${kind}${review.reviewer} · ${t(
      `qa.verdict.${review.verdict}`,
    )} · ${score}${review.comment ? ` — ${review.comment}` : ""}`;
    reviewList.append(item);
  }
}

// Who may judge: not the call's own teller; over a standing fail, only a supervisor's override.
const reviewBlocked = root.querySelector("[data-testid=review-blocked]");
const overrideForm = root.querySelector("[data-testid=override-form]");
const overrideResult = root.querySelector("[data-testid=override-result]");

function renderJudging() {
  reviewForm.hidden = !config.may_review;
  overrideForm.hidden = !config.may_override;
  const why = config.own_call ? "qa.own_call" : config.failed_review ? "qa.fail_stands" : "";
  reviewBlocked.hidden = !why;
  reviewBlocked.textContent = why ? t(why) : "";
}

function renderNotes() {
  if (emptied(noteList, config.notes, "qa.no_notes")) return;
  for (const note of config.notes) {
    const item = document.createElement("li");
    const when = document.createElement("span");
    when.className = "qa-event-time";
    when.textContent = fmt(note.at_ms);
    const who = document.createElement("span");
    who.className = "qa-event-actor";
    who.textContent = note.author;
    const text = document.createElement("span");
    text.className = "qa-note-text";
    text.textContent = note.text;
    item.append(seekButton(note.at_ms, [when, text, who]));
    noteList.append(item);
  }
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  // A refusal is {code, detail: {en, zh}} (videobank/errors.py): shown in the page's language.
  if (!response.ok) throw new Error(pick(answer.detail) || response.statusText);
  return answer;
}

reviewForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const checklist = {};
  for (const entry of config.checklist) {
    const chosen = reviewForm.querySelector(`input[name="check-${entry.key}"]:checked`);
    if (chosen) checklist[entry.key] = chosen.value;
  }
  const body = {
    checklist,
    verdict: reviewForm.elements.verdict.value,
    comment: reviewForm.elements.comment.value,
  };
  try {
    const { review } = await post(config.reviews_url, body);
    reviewResult.dataset.state = "saved";
    reviewResult.textContent = t("qa.review_saved", {
      score: review.score === null ? "—" : `${review.score}%`,
    });
    config.reviews.unshift({
      ...review,
      kind: "review",
      reviewer: config.viewer,
      comment: body.comment.trim(),
      at: new Date().toISOString(),
    });
    if (review.verdict === "fail") {
      config.failed_review = review.id;
      config.may_review = false;
      config.may_override = config.supervisor && !config.own_call;
    }
    renderReviews();
    renderJudging();
  } catch (error) {
    reviewResult.dataset.state = "error";
    reviewResult.textContent = t("qa.save_failed", { detail: error.message });
  }
});

overrideForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    review: config.failed_review,
    verdict: overrideForm.elements.verdict.value,
    reason: overrideForm.elements.reason.value,
  };
  try {
    const { review } = await post(config.override_url, body);
    overrideResult.dataset.state = "saved";
    overrideResult.textContent = t("qa.override_saved");
    config.reviews.unshift({
      ...review,
      reviewer: config.viewer,
      comment: body.reason.trim(),
      at: new Date().toISOString(),
    });
    config.failed_review = null;
    config.may_override = false;
    config.may_review = !config.own_call;
    renderReviews();
    renderJudging();
  } catch (error) {
    overrideResult.dataset.state = "error";
    overrideResult.textContent = t("qa.save_failed", { detail: error.message });
  }
});

noteForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const { note } = await post(config.notes_url, {
      at_ms: Math.round(now()),
      text: noteText.value,
    });
    config.notes.push(note);
    config.notes.sort((a, b) => a.at_ms - b.at_ms || a.id - b.id);
    renderNotes();
    noteText.value = "";
    noteResult.dataset.state = "saved";
    noteResult.textContent = t("qa.note_saved");
  } catch (error) {
    noteResult.dataset.state = "error";
    noteResult.textContent = t("qa.save_failed", { detail: error.message });
  }
});

const evidenceList = root.querySelector("[data-testid=replay-evidence]");

function renderEvidence() {
  if (emptied(evidenceList, config.evidence, "qa.evidence_none")) return;
  for (const item of config.evidence) {
    const entry = document.createElement("li");
    entry.dataset.kind = item.kind;
    const figure = document.createElement("figure");
    const image = document.createElement("img");
    image.src = item.url;
    image.loading = "lazy";
    image.dataset.testid = "evidence-image";
    const label = t(`qa.ev.${item.kind}`);
    const when = item.offset_ms === null ? "" : fmt(item.offset_ms);
    image.alt = when ? `${label}, ${when}` : label;
    const caption = document.createElement("figcaption");
    const parts = [label];
    if (typeof item.meta.distance === "number") {
      parts.push(t("qa.distance", { d: item.meta.distance.toFixed(2) }));
    }
    if (item.meta.problem) parts.push(item.meta.problem);
    caption.textContent = parts.join(" · ");
    figure.append(image, caption);
    entry.append(figure);
    if (item.offset_ms !== null) {
      const time = document.createElement("span");
      time.className = "qa-event-time";
      time.textContent = when;
      const jump = seekButton(item.offset_ms, [time]);
      jump.setAttribute("aria-label", `${label} ${when}`);
      entry.append(jump);
    }
    evidenceList.append(entry);
  }
}

renderEvidence();
renderChecks();
renderChecklist();
renderReviews();
renderJudging();
renderNotes();

start();
