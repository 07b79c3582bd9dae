// Teller console: presence, the ringing offer, talking, hanging up, wrap-up. The router picks
// which teller a call rings; the waiting list is for information only.

import { StatusView, callMedia, errorWords, exposeStats, openCamera, stopStream } from "./call.js";
import { pick, setLanguageSwitchEnabled, t } from "./i18n.js";
import { casesPanel } from "./cases_panel.js";
import { kycPanel } from "./kyc_panel.js";
import { Signaling } from "./signaling.js";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const presenceText = $("presence");
const presenceControls = document.querySelector("[data-presence-controls]");
const availableButton = $("go-available");
const wrapUpDoneButton = $("wrap-up-done");
const breakControl = document.querySelector("[data-break-control]");
const breakReason = $("break-reason");
const breakButton = $("go-break");
const offlineButton = $("go-offline");
const wrapUpNote = $("wrap-up-note");
const offerSlot = document.querySelector("[data-offer-slot]");
const offerTemplate = document.getElementById("offer-template");
const offerAnnounce = document.querySelector("[data-offer-announce]");
const waitingList = $("waiting-list");
const waitingEmpty = document.querySelector("[data-waiting-empty]");
const waitingMore = $("waiting-more");
const waitingCounts = $("waiting-counts");
const callPriority = $("call-priority");
const businessText = document.querySelector("[data-call-business]");
const hangupButton = $("call-hangup");
const localVideo = $("local-video");
const remoteVideo = $("remote-video");
const status = new StatusView($("call-status"));
const signaling = new Signaling("/ws/teller/");
const offerMedia = callMedia(signaling, { currentCall: () => call, status, remoteVideo });
const pageTitle = document.title;

let presence = "offline";
let presenceReason = "";
let waiting = [];
// The queue beyond the listed calls (the server sends the first few and the counts, never all).
let waitingTotal = 0;
let waitingBusinesses = [];
let snapshotAt = 0;
// The ringing offer: { id, deadline, total, element, acceptRef, answering }.
let offer = null;
// The call this console holds: { id, stream, leg, mediaConnected, framesSeen }.
let call = null;

exposeStats(() => call?.leg, remoteVideo);
const kyc = kycPanel({ signaling, currentCall: () => call });
const cases = casesPanel({ signaling, currentCall: () => call });

// --- presence ------------------------------------------------------------------------------

function presenceWords(value, reason) {
  if (value === "break" && reason) {
    const known = `break.${reason}`;
    return t("status.break_reason", { reason: t(known) !== known ? t(known) : reason });
  }
  return t(`status.${value}`);
}

function showPresence(value, reason = "") {
  presence = value;
  presenceReason = reason || "";
  presenceText.dataset.presence = value;
  presenceText.textContent = presenceWords(value, presenceReason);

  // Which moves make sense from here (the server enforces them too).
  const hadFocus = presenceControls.contains(document.activeElement);
  const free = !call && !offer;
  const show = {
    available: free && ["offline", "break"].includes(value),
    wrapUpDone: free && value === "wrap_up",
    break: free && ["available", "wrap_up"].includes(value),
    offline: free && ["available", "wrap_up", "break"].includes(value),
  };
  availableButton.hidden = !show.available;
  wrapUpDoneButton.hidden = !show.wrapUpDone;
  breakControl.hidden = !show.break;
  offlineButton.hidden = !show.offline;
  for (const control of [availableButton, wrapUpDoneButton, breakReason, breakButton, offlineButton]) {
    control.disabled = !signaling.open;
  }
  wrapUpNote.hidden = value !== "wrap_up";
  // Keep keyboard focus in the presence controls when the button it was on goes away.
  const focused = document.activeElement;
  if (hadFocus && !(presenceControls.contains(focused) && usable(focused))) firstPresenceControl()?.focus();
}

const usable = (element) => Boolean(element) && !element.disabled && !element.closest("[hidden]");
const firstPresenceControl = () => [...presenceControls.querySelectorAll("button")].find(usable);

function setPresence(value, reason) {
  const fields = { status: value };
  if (reason) fields.reason = reason;
  signaling.send("presence.set", fields);
}

availableButton.addEventListener("click", () => setPresence("available"));
wrapUpDoneButton.addEventListener("click", () => setPresence("available"));
breakButton.addEventListener("click", () => setPresence("break", breakReason.value));
offlineButton.addEventListener("click", () => setPresence("offline"));

// --- the waiting list (information) ------------------------------------------------------------

function secondsSince(entry) {
  return entry.waited_s + Math.round((performance.now() - snapshotAt) / 1000);
}

function languageName(code) {
  const known = `language.${code}`;
  return t(known) !== known ? t(known) : code;
}

function waitingMeta(entry) {
  return [
    t(`channel.${entry.channel}`),
    languageName(entry.language),
    t("console.waited", { s: secondsSince(entry) }),
  ].join(" · ");
}

function priorityWords(priority, claim) {
  // An elderly/accessibility priority is the customer's own claim until the identity check's
  // birth date confirms it: say which.
  const words = t(`priority.${priority}`);
  return claim === "claimed" || claim === "confirmed" ? `${words} (${t(`priority.${claim}`)})` : words;
}

function priorityBadge(priority, claim) {
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.dataset.claim = claim || "";
  badge.textContent = priorityWords(priority, claim);
  return badge;
}

function renderWaiting() {
  waitingList.replaceChildren(
    ...waiting.map((entry) => {
      const item = document.createElement("li");
      item.dataset.testid = "waiting-call";
      item.dataset.callId = entry.call_id;
      const label = document.createElement("span");
      label.className = "waiting-business";
      label.textContent = pick(entry.business_name) || entry.business;
      if (entry.priority > 0) label.append(" ", priorityBadge(entry.priority, entry.priority_claim));
      const meta = document.createElement("span");
      meta.className = "waiting-meta";
      meta.dataset.waited = "";
      meta.textContent = waitingMeta(entry);
      item.append(label, meta);
      return item;
    }),
  );
  waitingEmpty.hidden = waiting.length > 0;
  const more = Math.max(0, waitingTotal - waiting.length);
  waitingMore.dataset.more = String(more);
  waitingMore.textContent = more ? t("console.more_waiting", { n: more }) : "";
  waitingMore.hidden = more === 0;
  waitingCounts.textContent = waitingBusinesses.length
    ? `${t("console.waiting_by_business")}: ` +
      waitingBusinesses.map((b) => `${pick(b.business_name) || b.business} ${b.waiting}`).join(" · ")
    : "";
  waitingCounts.hidden = more === 0;
}

// --- the ringing offer -------------------------------------------------------------------------

function offerSecondsLeft() {
  return Math.max(0, Math.ceil((offer.deadline - performance.now()) / 1000));
}

function renderCountdown() {
  if (!offer) return;
  const left = offerSecondsLeft();
  const timer = offer.element.querySelector('[data-testid="offer-countdown"]');
  timer.dataset.seconds = String(left);
  timer.textContent = left > 0 ? t("console.offer_countdown", { s: left }) : t("console.offer_expiring");
  const bar = offer.element.querySelector("[data-offer-progress]");
  bar.max = offer.total;
  bar.value = Math.max(0, (offer.deadline - performance.now()) / 1000);
  offer.element.classList.toggle("offer-urgent", left <= 5);
  if (left === 0) setOfferButtons(false);
}

function setOfferButtons(enabled) {
  for (const button of offer.element.querySelectorAll("button")) button.disabled = !enabled;
}

function showOffer(message) {
  clearOffer();
  const business = pick(message.business_name) || message.business;
  const expires = Number(message.expires_in_s) || 15;
  const element = offerTemplate.content.firstElementChild.cloneNode(true);
  element.dataset.callId = message.call_id;
  element.querySelector("[data-offer-business]").textContent = business;
  element.querySelector("[data-offer-channel]").textContent = t(`channel.${message.channel}`);
  element.querySelector("[data-offer-language]").textContent = languageName(message.language);
  element.querySelector("[data-offer-waited]").textContent = t("console.seconds", { s: message.waited_s });
  if (message.priority > 0) {
    const priority = element.querySelector("[data-offer-priority]");
    priority.hidden = false;
    priority.append(priorityBadge(message.priority, message.priority_claim));
  }
  const accept = element.querySelector('[data-testid="call-accept"]');
  const reject = element.querySelector('[data-testid="call-reject"]');
  accept.dataset.callId = message.call_id;
  reject.dataset.callId = message.call_id;
  accept.setAttribute("aria-label", t("console.accept_label", { business }));
  reject.setAttribute("aria-label", t("console.reject_label", { business }));
  accept.addEventListener("click", () => acceptOffer());
  reject.addEventListener("click", () => rejectOffer());

  const focusWasIdle =
    !document.activeElement || document.activeElement === document.body ||
    presenceControls.contains(document.activeElement);
  offer = {
    id: message.call_id,
    deadline: performance.now() + expires * 1000,
    total: expires,
    element,
    acceptRef: null,
  };
  offerSlot.replaceChildren(element);
  renderCountdown();
  offerAnnounce.textContent = t("console.offer_announce", {
    business,
    channel: t(`channel.${message.channel}`),
    s: message.waited_s,
  });
  document.title = `${t("console.offer_title")} · ${pageTitle}`;
  showPresence(presence, presenceReason);
  if (focusWasIdle) accept.focus();
}

function clearOffer() {
  if (!offer) return;
  const hadFocus = offer.element.contains(document.activeElement);
  offer = null;
  offerSlot.replaceChildren();
  offerAnnounce.textContent = "";
  document.title = pageTitle;
  showPresence(presence, presenceReason);
  if (hadFocus) (hangupButton.disabled ? firstPresenceControl() : hangupButton)?.focus();
}

function acceptOffer() {
  if (!offer) return;
  setOfferButtons(false);
  status.callId = null;
  status.show("connecting", t("status.connecting"));
  offer.acceptRef = signaling.send("call.accept", { call_id: offer.id });
}

function rejectOffer() {
  if (!offer) return;
  signaling.send("call.reject", { call_id: offer.id });
  clearOffer();
}

setInterval(() => {
  renderCountdown();
  const metas = waitingList.querySelectorAll("[data-waited]");
  waiting.forEach((entry, i) => {
    if (metas[i]) metas[i].textContent = waitingMeta(entry);
  });
}, 250);

// --- the call ----------------------------------------------------------------------------------

function finish(state, words) {
  if (call) {
    call.leg?.close();
    stopStream(call.stream);
  }
  call = null;
  kyc.reset();
  cases.reset({ keepSummary: true });
  localVideo.srcObject = null;
  businessText.textContent = "";
  callPriority.textContent = "";
  hangupButton.disabled = true;
  setLanguageSwitchEnabled(true);
  status.show(state, words);
  showPresence(presence, presenceReason);
}

async function startMedia(mine) {
  mine.stream = await openCamera(localVideo);
  if (call !== mine) return stopStream(mine.stream);
  await offerMedia(mine);
}

const current = (message) => call && message.call_id === call.id;

hangupButton.addEventListener("click", () => {
  if (!call) return;
  hangupButton.disabled = true;
  signaling.send("call.hangup", { call_id: call.id });
});

signaling
  .on("hello", (message) => showPresence(message.presence || "offline", message.reason))
  .on("presence", (message) => showPresence(message.status, message.reason))
  .on("queue.snapshot", (message) => {
    waiting = message.calls || [];
    waitingTotal = message.waiting ?? waiting.length;
    waitingBusinesses = message.businesses || [];
    snapshotAt = performance.now();
    renderWaiting();
  })
  .on("call.offer", (message) => {
    if (call) return;
    // Being offered a call is a presence of its own (the router set it; no frame says so).
    presence = "offered";
    showOffer(message);
  })
  .on("offer.withdrawn", (message) => {
    // A withdrawn offer leaves the teller available; a `presence` frame follows if not (break).
    if (presence === "offered" && !call) presence = "available";
    if (offer?.id !== message.call_id) return showPresence(presence, presenceReason);
    clearOffer();
    if (!call) status.show("idle", t("console.offer_gone"));
  })
  .on("call.connected", (message) => {
    const mine = {
      id: message.call_id,
      iceServers: message.ice_servers,
      stream: null,
      leg: null,
      mediaConnected: false,
      framesSeen: false,
    };
    call = mine;
    kyc.reset();
    cases.reset();
    status.callId = mine.id;
    businessText.textContent = `${t("console.business")}: ${pick(message.business_name) || message.business}`;
    callPriority.textContent = message.priority > 0 ? priorityWords(message.priority, message.priority_claim) : "";
    callPriority.dataset.claim = message.priority_claim || "";
    hangupButton.disabled = false;
    clearOffer();
    if (document.activeElement === document.body || !document.activeElement) hangupButton.focus();
    setLanguageSwitchEnabled(false);
    status.show("answered", t("status.teller_answered"));
    showPresence(presence, presenceReason);
    startMedia(mine).catch((error) => {
      console.error(error);
      if (call !== mine) return;
      const denied = error?.name === "NotAllowedError" || error?.name === "NotFoundError";
      status.show("error", t(denied ? "status.camera_denied" : "status.media_failed"));
    });
  })
  .on("call.ended", (message) => {
    if (current(message)) finish("ended", t("status.ended"));
  })
  .on("call.priority", (message) => {
    // The identity check settled the customer's elderly claim: confirmed or withdrawn, in words.
    if (!current(message)) return;
    callPriority.textContent = pick(message.text);
    callPriority.dataset.claim = message.priority_claim;
  })
  .on("error", (message) => {
    // Shown in the KYC panel or on the business's card; the call goes on.
    if (kyc.owns(message.ref) || cases.owns(message.ref)) return;
    if (offer && offer.acceptRef && message.ref === offer.acceptRef) {
      // The accept failed (e.g. no media worker): the offer may still be ringing; let the
      // teller try again or decline until it is withdrawn.
      offer.acceptRef = null;
      if (offerSecondsLeft() > 0) setOfferButtons(true);
    }
    status.show("error", errorWords(message));
  })
  .on("socket.lost", () => {
    // The server ends a teller's calls and passes on its offer when its console drops.
    clearOffer();
    if (call) finish("error", t("status.disconnected"));
    showPresence("offline");
  })
  .on("socket.closed", (message) => {
    if (message.code === 4403) status.show("error", t("error.forbidden"));
  });

signaling.connect().catch(() => {});
