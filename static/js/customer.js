// Customer page: pick a business, call, wait in the queue, talk, hang up, call again.

import { StatusView, callMedia, errorWords, exposeStats, openCamera, stopStream } from "./call.js";
import { lang, setLanguageSwitchEnabled, t } from "./i18n.js";
import { Signaling } from "./signaling.js";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const form = document.getElementById("call-form");
const businessSelect = $("business-select");
const startButton = $("call-start");
const hangupButton = $("call-hangup");
const positionText = $("queue-position");
const localVideo = $("local-video");
const remoteVideo = $("remote-video");
const status = new StatusView($("call-status"));
const signaling = new Signaling("/ws/customer/");
const startMedia = callMedia(signaling, { currentCall: () => call, status, remoteVideo });

// The call in progress: { id, stream, leg, mediaConnected, framesSeen, cancelled }.
let call = null;

exposeStats(() => call?.leg, remoteVideo);

function setBusy(busy) {
  const focusLost = [startButton, hangupButton, document.body].includes(document.activeElement);
  startButton.disabled = busy;
  businessSelect.disabled = busy;
  hangupButton.disabled = !busy;
  setLanguageSwitchEnabled(!busy);
  if (focusLost) (busy ? hangupButton : startButton).focus();
}

function showPosition(position) {
  positionText.dataset.position = position ?? "";
  positionText.textContent = position ? t("status.position", { position, ahead: position - 1 }) : "";
}

function finish(state, words) {
  if (call) {
    call.leg?.close();
    stopStream(call.stream);
  }
  call = null;
  localVideo.srcObject = null;
  showPosition(null);
  setBusy(false);
  status.show(state, words);
}

async function startCall() {
  const mine = { id: null, stream: null, leg: null, mediaConnected: false, framesSeen: false };
  call = mine;
  status.callId = null;
  setBusy(true);
  showPosition(null);
  status.show("connecting", t("status.camera"));
  try {
    mine.stream = await openCamera(localVideo);
  } catch {
    if (call === mine) finish("error", t("status.camera_denied"));
    return;
  }
  if (call !== mine) return stopStream(mine.stream);
  status.show("connecting", t("status.connecting"));
  try {
    await signaling.connect();
  } catch {
    if (call === mine) finish("error", t("status.disconnected"));
    return;
  }
  if (call !== mine) return;
  signaling.send("call.request", {
    business: businessSelect.value,
    channel: form.dataset.channel,
    language: lang,
  });
}

const current = (message) => call && call.id && message.call_id === call.id;

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!call) startCall();
});

hangupButton.addEventListener("click", () => {
  if (!call) return;
  if (call.id) {
    hangupButton.disabled = true;
    signaling.send("call.hangup", { call_id: call.id });
  } else {
    // Not queued yet: if the queue confirms later, that call is hung up on arrival.
    finish("ended", t("status.ended"));
  }
});

signaling
  .on("call.queued", (message) => {
    if (!call || call.id) {
      signaling.send("call.hangup", { call_id: message.call_id });
      return;
    }
    call.id = message.call_id;
    status.callId = call.id;
    status.show("waiting", t("status.waiting"));
    showPosition(message.position);
  })
  .on("queue.position", (message) => {
    if (current(message) && status.state === "waiting") showPosition(message.position);
  })
  .on("call.answered", (message) => {
    if (!current(message)) return;
    showPosition(null);
    status.show("answered", t("status.answered"));
    const mine = call;
    startMedia(mine).catch((error) => {
      console.error(error);
      if (call === mine) status.show("error", t("status.media_failed"));
    });
  })
  .on("call.ended", (message) => {
    if (current(message)) finish("ended", t("status.ended"));
  })
  .on("error", (message) => {
    if (call && !call.id) finish("error", errorWords(message));
    else if (call) status.show("error", errorWords(message));
  })
  .on("socket.lost", () => {
    // The server ends a call whose customer socket drops; say so rather than wait forever.
    if (call) finish("error", t("status.disconnected"));
  });
