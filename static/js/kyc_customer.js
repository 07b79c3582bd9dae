// The customer's side of the identity check: consent (with place, if the browser may share it),
// "verifying identity…" progress, the liveness prompts, and a phone upload of the card.

import { pick, t } from "./i18n.js";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

export function kycCustomer({ signaling, currentCall }) {
  const box = $("kyc-customer");
  const consent = $("kyc-consent");
  const consentText = consent.querySelector("[data-kyc-consent-text]");
  const progress = $("kyc-progress");
  const bar = progress.querySelector("[data-kyc-bar]");
  const progressText = progress.querySelector("[data-kyc-text]");
  const prompt = $("kyc-liveness-prompt");
  const move = prompt.querySelector("[data-kyc-move]");
  const moveBar = prompt.querySelector("[data-kyc-move-bar]");
  const upload = document.querySelector("[data-kyc-upload]");
  const uploadStatus = $("kyc-upload-status");
  let challengeTimer = null;

  const callId = () => currentCall()?.id;

  function position() {
    // Only if the customer lets the browser share it; never waits more than 3 s.
    return new Promise((resolve) => {
      if (!navigator.geolocation) return resolve(null);
      navigator.geolocation.getCurrentPosition(
        (p) => resolve({ lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: p.coords.accuracy }),
        () => resolve(null),
        { timeout: 3000, maximumAge: 600000 },
      );
    });
  }

  async function answer(accepted) {
    for (const button of consent.querySelectorAll("button")) button.disabled = true;
    const fields = { call_id: callId(), accepted };
    if (accepted) {
      const place = await position();
      if (place) fields.geolocation = place;
    }
    signaling.send("kyc.consent", fields);
    consent.hidden = true;
  }
  $("kyc-consent-accept").addEventListener("click", () => answer(true));
  $("kyc-consent-decline").addEventListener("click", () => answer(false));

  for (const input of upload.querySelectorAll("input[type=file]")) {
    input.addEventListener("change", async () => {
      const file = input.files?.[0];
      if (!file || !callId()) return;
      uploadStatus.textContent = t("kyc.verifying");
      const body = new FormData();
      body.append("token", currentCall().token || "");
      body.append("side", input.dataset.side);
      body.append("image", file);
      try {
        const response = await fetch("/kyc/upload/", { method: "POST", body });
        const result = await response.json().catch(() => ({}));
        uploadStatus.textContent = response.ok ? t("kyc.upload_sent") : pick(result.detail) || t("error.generic");
      } catch {
        uploadStatus.textContent = t("status.disconnected");
      }
      input.value = "";
    });
  }

  function playChallenge(message) {
    clearInterval(challengeTimer);
    const steps = message.steps || [];
    const lead = Number(message.lead_in_ms) || 0;
    const total = lead + steps.reduce((sum, s) => sum + s.duration_ms, 0);
    const start = performance.now();
    prompt.hidden = false;
    const show = () => {
      const elapsed = performance.now() - start;
      let at = lead;
      let current = null;
      let index = -1;
      if (elapsed >= lead) {
        for (const [i, step] of steps.entries()) {
          if (elapsed < at + step.duration_ms) {
            current = step;
            index = i;
            break;
          }
          at += step.duration_ms;
        }
      }
      const words = current ? pick(current.prompt) : t("kyc.liveness_ready");
      if (move.textContent !== words) move.textContent = words;
      move.dataset.kind = current ? current.kind : "neutral";
      move.dataset.index = String(index);
      moveBar.value = Math.min(1, elapsed / total);
      if (elapsed >= total) {
        clearInterval(challengeTimer);
        prompt.hidden = true;
      }
    };
    show();
    challengeTimer = setInterval(show, 100);
  }

  signaling
    .on("kyc.consent_request", (message) => {
      if (message.call_id !== callId()) return;
      box.hidden = false;
      consentText.textContent = pick(message.text);
      for (const button of consent.querySelectorAll("button")) button.disabled = false;
      consent.hidden = false;
      $("kyc-consent-accept").focus();
    })
    .on("kyc.progress", (message) => {
      if (message.call_id !== callId()) return;
      box.hidden = false;
      progress.dataset.status = message.overall;
      progress.dataset.step = message.step;
      bar.max = message.total;
      bar.value = message.done;
      progressText.textContent = pick(message.text);
      upload.hidden = message.overall !== "in_progress";
    })
    .on("kyc.liveness_challenge", (message) => {
      if (message.call_id === callId()) playChallenge(message);
    });

  return {
    reset() {
      clearInterval(challengeTimer);
      box.hidden = true;
      consent.hidden = true;
      prompt.hidden = true;
      upload.hidden = true;
      progressText.textContent = "";
      progress.dataset.status = "";
      uploadStatus.textContent = "";
    },
  };
}

/** The kiosk's simulated peripherals (demo only): their events travel the real protocol. */
export function simulatedPeripherals({ signaling, currentCall, localVideo }) {
  const panel = $("sim-peripherals");
  if (!panel) return { show() {} };
  const simStatus = $("sim-status");

  function snapshot() {
    const canvas = document.createElement("canvas");
    canvas.width = localVideo.videoWidth || 640;
    canvas.height = localVideo.videoHeight || 480;
    canvas.getContext("2d").drawImage(localVideo, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL("image/jpeg", 0.9).split(",")[1];
  }

  $("sim-id-card").addEventListener("click", async () => {
    const call = currentCall();
    if (!call?.id) return;
    simStatus.textContent = t("kiosk.sim_reading");
    const response = await fetch("/kyc/simulated-card/", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: call.token, photo_jpeg_b64: snapshot() }),
    });
    const card = await response.json().catch(() => ({}));
    if (!response.ok) {
      simStatus.textContent = pick(card.detail) || t("error.generic");
      return;
    }
    signaling.send("peripheral.event", {
      call_id: call.id,
      device: "id_card_reader",
      event: "card_read",
      data: { fields: card.fields, photo_jpeg_b64: card.photo_jpeg_b64 },
    });
    simStatus.textContent = t("kiosk.sim_read");
  });
  for (const button of panel.querySelectorAll("button[data-device]")) {
    button.addEventListener("click", () => {
      const call = currentCall();
      if (!call?.id) return;
      signaling.send("peripheral.event", {
        call_id: call.id,
        device: button.dataset.device,
        event: button.dataset.event,
        data: { detail: button.dataset.detail },
      });
    });
  }
  // A done business prints its receipt on the kiosk's printer (simulated: it reports printing).
  signaling.on("case.receipt", (message) => {
    const call = currentCall();
    if (panel.hidden || message.call_id !== call?.id) return;
    signaling.send("peripheral.event", {
      call_id: call.id,
      device: "receipt_printer",
      event: "printed",
      data: { detail: `receipt ${message.code}` },
    });
  });
  return {
    show(visible) {
      panel.hidden = !visible;
      if (!visible) simStatus.textContent = "";
    },
  };
}
