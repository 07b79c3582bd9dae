// The customer's side of the businesses done in the call: read the agreement to its end, confirm
// the summary, authorise with a PIN (or one-time code) on a randomized keypad, get the receipt.
//
// The PIN is encrypted here, in the browser, for the core bank (RSA-OAEP with its public key and
// a one-use nonce): the signaling socket and our servers only ever carry the ciphertext.

import { pick, t } from "./i18n.js";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const PIN_LENGTH = 6;

function b64ToBytes(b64) {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function bytesToB64(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text);
}

/** Digits 0-9 in a random order (a fresh order for every entry). */
function shuffledDigits() {
  const digits = [..."0123456789"];
  const random = new Uint32Array(digits.length);
  crypto.getRandomValues(random);
  for (let i = digits.length - 1; i > 0; i--) {
    const j = random[i] % (i + 1);
    [digits[i], digits[j]] = [digits[j], digits[i]];
  }
  return digits;
}

async function encryptPin({ public_key_spki_b64: spki, nonce }, pin) {
  const key = await crypto.subtle.importKey(
    "spki",
    b64ToBytes(spki),
    { name: "RSA-OAEP", hash: "SHA-256" },
    false,
    ["encrypt"],
  );
  const plain = new TextEncoder().encode(JSON.stringify({ pin, nonce }));
  return bytesToB64(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, key, plain));
}

export function casesCustomer({ signaling, currentCall }) {
  const box = $("cases-customer");
  const agreement = $("case-agreement");
  const agreementTitle = agreement.querySelector("[data-agreement-title]");
  const agreementText = $("agreement-text");
  const agreementAccept = $("agreement-accept");
  const confirm = $("case-confirm");
  const confirmTitle = confirm.querySelector("[data-confirm-title]");
  const confirmList = $("confirm-summary");
  const pinBox = $("pin-entry");
  const pinLabel = pinBox.querySelector("[data-pin-label]");
  const pinPad = $("pin-pad");
  const pinDots = $("pin-dots");
  const pinStatus = $("pin-status");
  const progressList = $("case-progress");
  const receipts = $("case-receipts");

  let reading = null; // { caseId, shownAt, reachedEnd }
  let confirming = null; // caseId
  let pinRequest = null; // the case.pin_request message
  let digits = ""; // the PIN being typed: only ever in this closure, cleared after encryption

  const callId = () => currentCall()?.id;

  // --- agreement ---------------------------------------------------------------------------------
  function atEnd() {
    return agreementText.scrollTop + agreementText.clientHeight >= agreementText.scrollHeight - 4;
  }
  // "I have read and agree" only once the end was reached and the minimum reading time passed.
  function updateAccept() {
    if (!reading) return;
    const longEnough = performance.now() - reading.shownAt >= reading.minMs;
    agreementAccept.disabled = !(reading.reachedEnd && longEnough);
    if (reading.reachedEnd && !longEnough) {
      clearTimeout(reading.timer);
      reading.timer = setTimeout(updateAccept, reading.minMs - (performance.now() - reading.shownAt) + 20);
    }
  }
  agreementText.addEventListener("scroll", () => {
    if (reading && atEnd()) {
      reading.reachedEnd = true;
      updateAccept();
    }
  });
  agreementAccept.addEventListener("click", () => {
    if (!reading?.reachedEnd) return;
    // The server measures the reading time itself (from when it sent the agreement).
    signaling.send("case.agreement.read", {
      call_id: callId(),
      case_id: reading.caseId,
      reached_end: true,
    });
    agreement.hidden = true;
    reading = null;
  });

  function showAgreement(message) {
    box.hidden = false;
    agreementTitle.textContent = pick(message.title);
    agreementText.replaceChildren(
      ...(message.paragraphs || []).map((paragraph) => {
        const p = document.createElement("p");
        p.textContent = pick(paragraph);
        return p;
      }),
    );
    agreementText.scrollTop = 0;
    reading = {
      caseId: message.case_id,
      shownAt: performance.now(),
      reachedEnd: false,
      minMs: Number(message.min_read_ms) || 0,
      timer: null,
    };
    agreementAccept.disabled = true;
    agreement.hidden = false;
    if (atEnd()) reading.reachedEnd = true; // short enough to fit
    updateAccept();
    agreementText.focus();
  }

  // --- confirmation ----------------------------------------------------------------------------
  function showConfirm(message) {
    box.hidden = false;
    confirming = message.case_id;
    confirmTitle.textContent = pick(message.title) || t("cases.confirm_title");
    confirmList.replaceChildren(
      ...(message.summary || []).flatMap((row) => {
        const dt = document.createElement("dt");
        dt.textContent = pick(row.label);
        const dd = document.createElement("dd");
        dd.textContent = typeof row.value === "object" && row.value ? pick(row.value) : String(row.value ?? "");
        return [dt, dd];
      }),
    );
    for (const button of confirm.querySelectorAll("button")) button.disabled = false;
    confirm.hidden = false;
    $("confirm-accept").focus();
  }
  function answerConfirm(accepted) {
    if (!confirming) return;
    for (const button of confirm.querySelectorAll("button")) button.disabled = true;
    signaling.send("case.confirm", { call_id: callId(), case_id: confirming, accepted });
    confirm.hidden = true;
    confirming = null;
  }
  $("confirm-accept").addEventListener("click", () => answerConfirm(true));
  $("confirm-refuse").addEventListener("click", () => answerConfirm(false));

  // --- PIN / one-time code on a randomized keypad -------------------------------------------
  function renderDots() {
    pinDots.textContent = "●".repeat(digits.length) + "○".repeat(PIN_LENGTH - digits.length);
    pinDots.dataset.count = String(digits.length);
  }
  function renderPad() {
    const keys = shuffledDigits().map((digit) => {
      const key = document.createElement("button");
      key.type = "button";
      key.className = "pin-key";
      key.textContent = digit;
      key.dataset.testid = "pin-key";
      key.dataset.digit = digit; // for tests and assistive tech; the layout changes every time
      key.addEventListener("click", () => press(digit));
      return key;
    });
    const back = document.createElement("button");
    back.type = "button";
    back.className = "pin-key pin-back";
    back.dataset.testid = "pin-back";
    back.textContent = "⌫";
    back.setAttribute("aria-label", t("cases.pin_back"));
    back.addEventListener("click", () => {
      digits = digits.slice(0, -1);
      renderDots();
    });
    keys.splice(9, 0, back);
    pinPad.replaceChildren(...keys);
  }
  async function press(digit) {
    if (!pinRequest || digits.length >= PIN_LENGTH) return;
    digits += digit;
    renderDots();
    if (digits.length < PIN_LENGTH) return;
    const request = pinRequest;
    const typed = digits;
    digits = "";
    pinRequest = null;
    for (const key of pinPad.querySelectorAll("button")) key.disabled = true;
    pinStatus.textContent = t("cases.pin_sending");
    try {
      const ciphertext = await encryptPin(request, typed);
      signaling.send("case.authorise", {
        call_id: callId(),
        case_id: request.case_id,
        challenge_id: request.challenge_id,
        ciphertext_b64: ciphertext,
      });
    } catch (error) {
      console.error("PIN encryption failed", error?.name);
      pinStatus.textContent = t("error.generic");
    }
  }
  function showPin(message) {
    box.hidden = false;
    pinRequest = message;
    digits = "";
    pinLabel.textContent = message.text
      ? pick(message.text)
      : t(message.method === "otp" ? "cases.otp_label" : "cases.pin_label");
    pinBox.dataset.method = message.method;
    pinStatus.textContent = message.error
      ? pick(message.error.text || message.error)
      : message.retry && message.attempts_left != null
        ? t("cases.pin_retry", { n: message.attempts_left })
        : "";
    renderPad();
    renderDots();
    pinBox.hidden = false;
    pinPad.querySelector("button")?.focus();
  }

  // --- progress and receipts ---------------------------------------------------------------
  function progressItem(caseId) {
    let item = progressList.querySelector(`[data-case-id="${caseId}"]`);
    if (!item) {
      item = document.createElement("li");
      item.dataset.caseId = caseId;
      item.dataset.testid = "case-progress-item";
      progressList.append(item);
    }
    return item;
  }

  signaling
    .on("case.agreement", (message) => {
      if (message.call_id === callId()) showAgreement(message);
    })
    .on("case.confirm_request", (message) => {
      if (message.call_id === callId()) showConfirm(message);
    })
    .on("case.pin_request", (message) => {
      if (message.call_id === callId()) showPin(message);
    })
    .on("case.progress", (message) => {
      if (message.call_id !== callId()) return;
      box.hidden = false;
      const item = progressItem(message.case_id);
      // A late message from another process must not take the business back a step.
      if ((message.revision ?? 0) < Number(item.dataset.revision ?? -1)) return;
      item.dataset.revision = String(message.revision ?? 0);
      item.dataset.status = message.status;
      const name = typeof message.business === "object" ? pick(message.business) : "";
      item.textContent = name ? `${name}：${pick(message.text)}` : pick(message.text);
      if (!["authorising", "needs_pin"].includes(message.status) && pinRequest?.case_id === message.case_id) {
        pinBox.hidden = true;
        pinRequest = null;
      }
      if (pinBox.hidden === false && !pinRequest) pinBox.hidden = true;
    })
    .on("case.receipt", (message) => {
      if (message.call_id !== callId()) return;
      box.hidden = false;
      const item = document.createElement("li");
      item.dataset.testid = "case-receipt";
      item.dataset.code = message.code;
      const name = document.createElement("span");
      name.textContent = `${pick(message.title) || ""} ${t("cases.receipt_code")}: ${message.code} `;
      // Each link carries the receipt's own token (the call's token opens no receipt).
      const html = document.createElement("a");
      html.href = message.url;
      html.target = "_blank";
      html.rel = "noopener";
      html.textContent = t("cases.receipt_view");
      const pdf = document.createElement("a");
      pdf.href = message.pdf_url;
      pdf.textContent = "PDF";
      pdf.setAttribute("download", "");
      item.append(name, html, " · ", pdf);
      receipts.append(item);
    });

  return {
    reset() {
      box.hidden = true;
      agreement.hidden = true;
      confirm.hidden = true;
      pinBox.hidden = true;
      reading = confirming = pinRequest = null;
      digits = "";
      progressList.replaceChildren();
      receipts.replaceChildren();
    },
  };
}
