// The teller's KYC panel: drives the call's identity check (kyc.* messages) and shows each step
// live as the server reports it (`kyc.state`). The server decides; this only asks and shows.

import { pick, t } from "./i18n.js";

const $ = (testid, root = document) => root.querySelector(`[data-testid="${testid}"]`);

export function kycPanel({ signaling, currentCall }) {
  const panel = $("kyc-panel");
  const statusText = $("kyc-status");
  const steps = $("kyc-steps");
  const form = $("kyc-fields");
  const checks = $("kyc-checks");
  const eyes = $("kyc-eyes-checked");
  const peripherals = $("kyc-peripherals");
  const buttons = {
    start: $("kyc-start"),
    front: $("kyc-capture-front"),
    back: $("kyc-capture-back"),
    face: $("kyc-face-match"),
    liveness: $("kyc-liveness"),
    national: $("kyc-national"),
  };
  let state = null; // the last `check` from the server
  let formFor = null; // which OCR result the form was filled from (teller edits are kept)

  const errorText = $("kyc-error");
  const refs = new Set(); // ids of the messages this panel sent: their errors are shown here
  const callId = () => currentCall()?.id;
  const send = (type, fields = {}) => {
    if (!callId()) return;
    errorText.textContent = "";
    refs.add(signaling.send(type, { call_id: callId(), ...fields }));
  };

  buttons.start.addEventListener("click", () => send("kyc.start"));
  buttons.front.addEventListener("click", () => send("kyc.capture", { side: "front" }));
  buttons.back.addEventListener("click", () => send("kyc.capture", { side: "back" }));
  buttons.face.addEventListener("click", () => send("kyc.face_match"));
  buttons.liveness.addEventListener("click", () => send("kyc.liveness"));
  buttons.national.addEventListener("click", () => send("kyc.national"));

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!eyes.checked) {
      eyes.focus();
      return;
    }
    const fields = {};
    for (const input of form.querySelectorAll("input[name]")) {
      if (input.value.trim()) fields[input.name] = input.value.trim();
    }
    send("kyc.fields.confirm", { fields });
  });

  function stepOf(name) {
    return state?.steps.find((s) => s.step === name) || { status: "pending" };
  }

  function renderSteps() {
    steps.replaceChildren(
      ...state.steps.map((step) => {
        const item = document.createElement("li");
        item.dataset.testid = `kyc-step-${step.step}`;
        item.dataset.status = step.status;
        item.className = `kyc-step kyc-${step.status}`;
        const label = document.createElement("span");
        label.className = "kyc-step-label";
        label.textContent = pick(step.label);
        const words = document.createElement("span");
        words.className = "kyc-step-status";
        words.textContent = t(`kyc.step.${step.status}`);
        item.append(label, " ", words);
        if (step.status === "running") {
          const bar = document.createElement("progress");
          bar.setAttribute("aria-label", pick(step.label));
          item.append(" ", bar);
        }
        const detail = step.detail && (document.documentElement.lang.startsWith("en") ? step.detail : step.detail_zh || step.detail);
        if (detail) {
          const p = document.createElement("p");
          p.className = "kyc-step-detail";
          p.dataset.testid = `kyc-detail-${step.step}`;
          p.textContent = detail;
          item.append(p);
        }
        if (step.step === "face_match" && step.distances) {
          const p = document.createElement("p");
          p.className = "kyc-step-detail";
          p.dataset.testid = "kyc-face-scores";
          p.textContent = step.distances
            .map((d) => (d === null ? "—" : t("kyc.distance", { d: d.toFixed(2), t: step.threshold })))
            .join(" · ");
          item.append(p);
        }
        return item;
      }),
    );
  }

  function fillForm() {
    const read = { ...(state.fields_read.back || {}), ...(state.fields_read.front || {}) };
    const key = JSON.stringify(read);
    if (key === formFor) return; // keep what the teller typed
    formFor = key;
    for (const input of form.querySelectorAll("input[name]")) {
      const value = state.fields[input.name] ?? read[input.name] ?? "";
      input.value = value;
      const shown = form.querySelector(`[data-read-for="${input.name}"]`);
      if (shown) shown.textContent = read[input.name] ? `OCR: ${read[input.name]}` : "";
    }
    eyes.checked = false;
    const results = state.fields_read.front_checks || state.fields_read.checks || [];
    checks.replaceChildren(
      ...results.map((check) => {
        const item = document.createElement("li");
        item.dataset.rule = check.rule;
        item.className = check.passed ? "kyc-check-ok" : "kyc-check-bad";
        const words = document.documentElement.lang.startsWith("en") ? check.detail : check.detail_zh || check.detail;
        item.textContent = `${check.passed ? "✓" : "✗"} ${words}`;
        return item;
      }),
    );
  }

  function render() {
    panel.hidden = !callId();
    if (!state) {
      statusText.textContent = "";
      statusText.dataset.status = "";
      steps.replaceChildren();
      form.hidden = true;
      for (const [name, button] of Object.entries(buttons)) button.disabled = name !== "start";
      buttons.national.hidden = true;
      return;
    }
    statusText.dataset.status = state.status;
    let words = t(`kyc.status.${state.status}`);
    if (state.status === "passed") {
      words += ` · ${t(`kyc.level.${state.level}`)}`;
      if (state.expires_at) {
        words += ` · ${t("kyc.expires", { time: new Date(state.expires_at).toLocaleTimeString() })}`;
      }
    }
    statusText.textContent = words;
    renderSteps();
    const consented = ["in_progress", "passed"].includes(state.status);
    const running = (name) => stepOf(name).status === "running";
    buttons.start.disabled = consented || state.status === "consent_pending";
    buttons.front.disabled = !consented || running("card_front");
    buttons.back.disabled = !consented || running("card_back");
    const portrait = stepOf("card_front").status === "passed";
    buttons.face.disabled = !consented || !portrait || running("face_match");
    buttons.liveness.disabled = !consented || running("liveness");
    const frontBack = stepOf("card_front").status === "passed" && stepOf("card_back").status === "passed";
    form.hidden = !consented || !frontBack;
    if (!form.hidden) fillForm();
    // Confirmed fields are locked, unless the national check disagreed (a typo to correct).
    const locked = stepOf("fields").status === "passed" && stepOf("national").status !== "failed";
    for (const control of form.querySelectorAll("input, button")) control.disabled = locked;
    const national = stepOf("national");
    buttons.national.hidden = !(national.status === "failed" && national.retry);
    buttons.national.disabled = buttons.national.hidden;
  }

  signaling
    .on("kyc.state", (message) => {
      if (message.call_id !== callId()) return;
      state = message.check;
      render();
    })
    .on("error", (message) => {
      if (!refs.has(message.ref)) return;
      errorText.textContent = message.detail || t("error.generic");
    })
    .on("peripheral", (message) => {
      if (message.call_id !== callId()) return;
      const item = document.createElement("li");
      item.dataset.testid = "kyc-peripheral-event";
      item.dataset.device = message.device;
      item.textContent = `${t("kyc.peripheral")}: ${message.device} · ${message.event}${message.name ? ` · ${message.name}` : ""}${message.id_number ? ` · ${message.id_number}` : ""}`;
      peripherals.prepend(item);
    });

  return {
    /** Did this panel send the message an error refers to? (Its errors are not the call's.) */
    owns(ref) {
      return refs.has(ref);
    },
    /** A new call (or none): the panel starts empty. */
    reset() {
      state = null;
      errorText.textContent = "";
      formFor = null;
      peripherals.replaceChildren();
      render();
    },
  };
}
