// Customer page: pick a business, call, wait in the queue (position and estimated wait), talk,
// hang up, call again. A long wait may offer a callback; a teller who drops puts the call back
// at the head of the queue.

import { StatusView, callMedia, errorWords, exposeStats, openCamera, stopStream } from "./call.js";
import { lang, setLanguageSwitchEnabled, setLargeText, t } from "./i18n.js";
import { casesCustomer } from "./cases_customer.js";
import { kycCustomer, simulatedPeripherals } from "./kyc_customer.js";
import { Signaling } from "./signaling.js";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const form = document.getElementById("call-form");
const businessSelect = $("business-select");
const priorityBox = $("priority-elderly");
// Who asks for the elderly/accessibility queue gets large text too (the header's switch turns
// it off again).
priorityBox.addEventListener("change", () => {
  if (priorityBox.checked) setLargeText(true);
});
const startButton = $("call-start");
const hangupButton = $("call-hangup");
const positionText = $("queue-position");
const etaText = $("queue-eta");
const callbackOffer = document.querySelector("[data-callback-offer]");
const callbackText = callbackOffer.querySelector("p");
const callbackButton = $("callback-request");
const localVideo = $("local-video");
const remoteVideo = $("remote-video");
const status = new StatusView($("call-status"));
const signaling = new Signaling("/ws/customer/");
const startMedia = callMedia(signaling, { currentCall: () => call, status, remoteVideo });

// The call in progress: { id, stream, leg, mediaConnected, framesSeen }.
let call = null;
// The queue was full and a callback is on offer instead (no call exists yet).
let fullQueueOffer = false;

exposeStats(() => call?.leg, remoteVideo);
const kyc = kycCustomer({ signaling, currentCall: () => call });
const cases = casesCustomer({ signaling, currentCall: () => call });
const peripherals = simulatedPeripherals({ signaling, currentCall: () => call, localVideo });

function setBusy(busy) {
  const focusLost = [startButton, hangupButton, callbackButton, document.body].includes(
    document.activeElement,
  );
  startButton.disabled = busy;
  businessSelect.disabled = busy;
  priorityBox.disabled = busy;
  hangupButton.disabled = !busy;
  setLanguageSwitchEnabled(!busy);
  if (focusLost) (busy ? hangupButton : startButton).focus();
}

function etaWords(seconds) {
  if (seconds < 60) return t("status.eta_soon");
  return t("status.eta", { minutes: Math.ceil(seconds / 60) });
}

/** Position and estimated wait; text is only rewritten when it changes (a live region). */
function showPosition(position, estimatedWaitS) {
  const words = position ? t("status.position", { position, ahead: position - 1 }) : "";
  positionText.dataset.position = position ?? "";
  if (positionText.textContent !== words) positionText.textContent = words;
  const known = position && Number.isFinite(estimatedWaitS);
  etaText.dataset.seconds = known ? String(estimatedWaitS) : "";
  const eta = known ? etaWords(estimatedWaitS) : "";
  if (etaText.textContent !== eta) etaText.textContent = eta;
}

function showCallbackOffer(show, queueFull = false) {
  fullQueueOffer = show && queueFull;
  callbackText.textContent = t(queueFull ? "customer.callback_full" : "customer.callback_offer");
  callbackOffer.hidden = !show;
  callbackButton.disabled = !show;
}

function finish(state, words) {
  if (call) {
    call.leg?.close();
    stopStream(call.stream);
  }
  call = null;
  kyc.reset();
  cases.reset();
  peripherals.show(false);
  localVideo.srcObject = null;
  showPosition(null);
  showCallbackOffer(false);
  setBusy(false);
  status.show(state, words);
}

async function startCall() {
  const mine = { id: null, stream: null, leg: null, mediaConnected: false, framesSeen: false };
  call = mine;
  status.callId = null;
  setBusy(true);
  showPosition(null);
  showCallbackOffer(false);
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
  // The server takes the channel from what the socket proves (an enrolled kiosk's cookie);
  // an enrolled kiosk's page states that it expects "vtm", so a lapsed enrolment is refused in
  // words instead of becoming a web call unnoticed.
  const request = {
    business: businessSelect.value,
    language: lang,
    priority: priorityBox.checked ? "elderly" : "normal",
  };
  if (form.dataset.channel) request.channel = form.dataset.channel;
  signaling.send("call.request", request);
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

callbackButton.addEventListener("click", () => {
  if (fullQueueOffer && !call) {
    callbackButton.disabled = true;
    signaling.send("callback.request", {});
    return;
  }
  if (!call?.id) return;
  callbackButton.disabled = true;
  signaling.send("callback.request", { call_id: call.id });
});

signaling
  .on("call.queued", (message) => {
    if (!call || call.id) {
      signaling.send("call.hangup", { call_id: message.call_id });
      return;
    }
    call.id = message.call_id;
    call.token = message.token;
    status.callId = call.id;
    // An elderly request beyond what one network may ask for waits as a normal call: say so.
    const notApplied = message.priority_claim === "over_limit";
    status.show("waiting", t(notApplied ? "status.priority_not_applied" : "status.waiting"));
    showPosition(message.position, message.estimated_wait_s);
  })
  .on("queue.position", (message) => {
    if (current(message) && status.state === "waiting") {
      showPosition(message.position, message.estimated_wait_s);
    }
  })
  .on("queue.callback_offer", (message) => {
    if (message.reason === "queue_full") {
      // The call was refused (the error said so): a callback is offered instead.
      if (!call) showCallbackOffer(true, true);
      return;
    }
    if (current(message) && status.state === "waiting") showCallbackOffer(true);
  })
  .on("call.requeued", (message) => {
    if (!current(message)) return;
    // The teller dropped: close our leg, keep the camera; the next teller starts media anew.
    call.leg?.close();
    call.leg = null;
    call.mediaConnected = false;
    call.framesSeen = false;
    status.show("waiting", t("status.requeued"));
    showPosition(1, undefined);
  })
  .on("call.answered", (message) => {
    if (!current(message)) return;
    showPosition(null);
    showCallbackOffer(false);
    peripherals.show(true);
    status.show("answered", t("status.answered"));
    const mine = call;
    mine.iceServers = message.ice_servers;
    startMedia(mine).catch((error) => {
      console.error(error);
      if (call === mine) status.show("error", t("status.media_failed"));
    });
  })
  .on("call.ended", (message) => {
    if (fullQueueOffer && !call && message.reason === "callback") {
      showCallbackOffer(false);
      status.show("ended", t("status.callback_booked"));
      return;
    }
    if (!current(message)) return;
    const callback = message.reason === "callback";
    finish("ended", t(callback ? "status.callback_booked" : "status.ended"));
  })
  .on("error", (message) => {
    if (message.code === "queue_full" && call && !call.id) finish("error", t("error.queue_full"));
    else if (fullQueueOffer && !call) {
      status.show("error", errorWords(message));
      callbackButton.disabled = false;
    } else if (call && !call.id) finish("error", errorWords(message));
    else if (call) {
      status.show("error", errorWords(message));
      if (!callbackOffer.hidden) callbackButton.disabled = false;
    }
  })
  .on("socket.lost", () => {
    // The server ends a call whose customer socket drops; say so rather than wait forever.
    if (call) finish("error", t("status.disconnected"));
  });
