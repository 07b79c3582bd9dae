// Teller console: presence, the waiting list, taking a call, talking, hanging up.

import { StatusView, callMedia, errorWords, exposeStats, openCamera, stopStream } from "./call.js";
import { pick, setLanguageSwitchEnabled, t } from "./i18n.js";
import { Signaling } from "./signaling.js";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const presenceButton = $("go-available");
const presenceText = $("presence");
const waitingList = $("waiting-list");
const waitingEmpty = document.querySelector("[data-waiting-empty]");
const businessText = document.querySelector("[data-call-business]");
const hangupButton = $("call-hangup");
const localVideo = $("local-video");
const remoteVideo = $("remote-video");
const status = new StatusView($("call-status"));
const signaling = new Signaling("/ws/teller/");
const offerMedia = callMedia(signaling, { currentCall: () => call, status, remoteVideo });

let presence = "offline";
let waiting = [];
let snapshotAt = 0;
let accepting = null; // call id of a pending call.accept
// The call this console holds: { id, stream, leg, mediaConnected, framesSeen }.
let call = null;

exposeStats(() => call?.leg, remoteVideo);

function showPresence(value) {
  presence = value;
  presenceText.dataset.presence = value;
  presenceText.textContent = t(value === "offered" ? "status.busy" : `status.${value}`);
  presenceButton.textContent = t(value === "available" ? "console.go_offline" : "console.go_available");
  presenceButton.disabled = !signaling.open || Boolean(call) || !["available", "offline"].includes(value);
  renderWaiting();
}

function waitedText(entry) {
  const seconds = entry.waited_s + Math.round((performance.now() - snapshotAt) / 1000);
  return t("console.waited", { s: seconds });
}

function renderWaiting() {
  const focusedId = document.activeElement?.dataset?.callId;
  const canAccept = presence === "available" && !call && !accepting;
  waitingList.replaceChildren(
    ...waiting.map((entry) => {
      const item = document.createElement("li");
      const business = pick(entry.business_name) || entry.business;
      const label = document.createElement("span");
      label.className = "waiting-business";
      label.textContent = business;
      const meta = document.createElement("span");
      meta.className = "waiting-meta";
      meta.dataset.waited = "";
      meta.textContent = `${t(`channel.${entry.channel}`)} · ${waitedText(entry)}`;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button-primary";
      button.dataset.testid = "call-accept";
      button.dataset.callId = entry.call_id;
      button.textContent = t("console.accept");
      button.setAttribute("aria-label", t("console.accept_label", { business }));
      button.disabled = !canAccept;
      button.addEventListener("click", () => accept(entry.call_id));
      item.append(label, meta, button);
      return item;
    }),
  );
  waitingEmpty.hidden = waiting.length > 0;
  // Keep keyboard focus on the same call across re-renders.
  if (focusedId) waitingList.querySelector(`[data-call-id="${focusedId}"]`)?.focus();
}

setInterval(() => {
  const metas = waitingList.querySelectorAll("[data-waited]");
  waiting.forEach((entry, i) => {
    if (metas[i]) metas[i].textContent = `${t(`channel.${entry.channel}`)} · ${waitedText(entry)}`;
  });
}, 1000);

function accept(callId) {
  accepting = callId;
  renderWaiting();
  status.callId = null;
  status.show("connecting", t("status.connecting"));
  signaling.send("call.accept", { call_id: callId });
}

function finish(state, words) {
  if (call) {
    call.leg?.close();
    stopStream(call.stream);
  }
  call = null;
  accepting = null;
  localVideo.srcObject = null;
  businessText.textContent = "";
  hangupButton.disabled = true;
  setLanguageSwitchEnabled(true);
  status.show(state, words);
  showPresence(presence);
}

async function startMedia(mine) {
  mine.stream = await openCamera(localVideo);
  if (call !== mine) return stopStream(mine.stream);
  await offerMedia(mine);
}

const current = (message) => call && message.call_id === call.id;

presenceButton.addEventListener("click", () => {
  signaling.send("presence.set", { status: presence === "available" ? "offline" : "available" });
});

hangupButton.addEventListener("click", () => {
  if (!call) return;
  hangupButton.disabled = true;
  signaling.send("call.hangup", { call_id: call.id });
});

signaling
  .on("hello", (message) => showPresence(message.presence || "offline"))
  .on("presence", (message) => showPresence(message.status))
  .on("queue.snapshot", (message) => {
    waiting = message.calls || [];
    snapshotAt = performance.now();
    renderWaiting();
  })
  .on("call.connected", (message) => {
    accepting = null;
    const mine = { id: message.call_id, stream: null, leg: null, mediaConnected: false, framesSeen: false };
    call = mine;
    status.callId = mine.id;
    businessText.textContent = `${t("console.business")}: ${pick(message.business_name) || message.business}`;
    hangupButton.disabled = false;
    if (document.activeElement === document.body || !document.activeElement) hangupButton.focus();
    setLanguageSwitchEnabled(false);
    status.show("answered", t("status.teller_answered"));
    showPresence(presence);
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
  .on("error", (message) => {
    if (accepting) {
      accepting = null;
      renderWaiting();
    }
    status.show("error", errorWords(message));
  })
  .on("socket.lost", () => {
    // The server ends a teller's calls when its console drops.
    if (call) finish("error", t("status.disconnected"));
    presenceButton.disabled = true;
  })
  .on("socket.closed", (message) => {
    if (message.code === 4403) status.show("error", t("error.forbidden"));
  });

signaling.connect().catch(() => {});
