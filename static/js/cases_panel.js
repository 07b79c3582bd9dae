// The teller's business cards: start a business, fill its form, push the agreement, follow each
// step live (`case.state`), and see the call's summary at hang-up (`call.summary`). Forms are
// rendered from the spec the server sends: a new business needs no change here.

import { pick, t } from "./i18n.js";

const $ = (testid, root = document) => root.querySelector(`[data-testid="${testid}"]`);

const INPUT_TYPES = { number: "number", money: "number", date: "date", mobile: "tel" };

export function casesPanel({ signaling, currentCall }) {
  const panel = $("cases-panel");
  const select = $("case-business");
  const startButton = $("case-start");
  const list = $("cases");
  const errorText = $("case-error");
  const summary = $("call-summary");
  const summaryList = $("call-summary-list");
  const refs = new Set();
  const cards = new Map(); // case_id -> { element, state, formKey }
  const revisions = new Map(); // case_id -> the highest revision shown

  const callId = () => currentCall()?.id;
  const send = (type, fields) => {
    if (!callId()) return;
    errorText.textContent = "";
    refs.add(signaling.send(type, { call_id: callId(), ...fields }));
  };

  startButton.addEventListener("click", () => send("case.start", { business: select.value }));

  function fieldControl(field) {
    let control;
    if (field.type === "select" || field.choices?.length) {
      control = document.createElement("select");
      const blank = document.createElement("option");
      blank.value = "";
      blank.textContent = "—";
      control.append(blank);
      for (const choice of field.choices || []) {
        const option = document.createElement("option");
        option.value = String(choice.value);
        option.textContent = typeof choice.label === "object" ? pick(choice.label) : String(choice.label ?? choice.value);
        control.append(option);
      }
    } else if (field.type === "boolean") {
      control = document.createElement("input");
      control.type = "checkbox";
    } else {
      control = document.createElement("input");
      control.type = INPUT_TYPES[field.type] || "text";
      if (field.type === "money") control.step = "0.01";
    }
    control.name = field.name;
    control.dataset.testid = `case-field-${field.name}`;
    control.required = Boolean(field.required);
    if (control.type === "checkbox") control.checked = Boolean(field.value);
    else if (field.value !== undefined && field.value !== null) control.value = String(field.value);
    return control;
  }

  function renderForm(card, state) {
    const form = card.element.querySelector("form");
    const spec = state.form || [];
    const key = JSON.stringify(spec.map((f) => [f.name, f.value ?? null, f.error ?? null])) + state.status;
    if (key === card.formKey) return; // keep what the teller is typing
    card.formKey = key;
    form.replaceChildren(
      ...spec.map((field) => {
        const label = document.createElement("label");
        label.className = "case-field";
        const words = document.createElement("span");
        words.textContent = pick(field.label) + (field.required ? " *" : "");
        const control = fieldControl(field);
        control.disabled = !state.can?.fill;
        label.append(words, control);
        if (field.help) {
          const help = document.createElement("small");
          help.textContent = pick(field.help);
          label.append(help);
        }
        if (field.error) {
          const error = document.createElement("small");
          error.className = "case-field-error";
          error.textContent = pick(field.error);
          label.append(error);
        }
        return label;
      }),
    );
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "button-primary";
    save.dataset.testid = "case-fill";
    save.textContent = t("cases.save");
    save.disabled = !state.can?.fill;
    form.append(save);
  }

  function renderCard(state) {
    let card = cards.get(state.case_id);
    if (!card) {
      const element = document.createElement("article");
      element.className = "case-card";
      element.innerHTML = `
        <header><h4 data-case-title></h4><span class="case-status" data-case-status></span></header>
        <ol class="case-steps" data-case-steps></ol>
        <p class="case-message" data-case-message role="status"></p>
        <form class="case-form" novalidate></form>
        <div class="case-actions">
          <button type="button" data-testid="case-agreement-send"></button>
          <button type="button" data-testid="case-pin-resend"></button>
          <button type="button" data-testid="case-submission-retry"></button>
          <button type="button" class="button-quiet" data-testid="case-cancel"></button>
        </div>
        <p class="case-receipt" data-case-receipt hidden></p>`;
      element.querySelector('[data-testid="case-agreement-send"]').textContent = t("cases.send_agreement");
      element.querySelector('[data-testid="case-cancel"]').textContent = t("cases.cancel");
      element.querySelector('[data-testid="case-pin-resend"]').textContent = t("cases.pin_resend");
      element.querySelector('[data-testid="case-submission-retry"]').textContent = t("cases.submission_retry");
      element.querySelector('[data-testid="case-pin-resend"]').addEventListener("click", () =>
        send("case.pin.resend", { case_id: state.case_id }),
      );
      element.querySelector('[data-testid="case-submission-retry"]').addEventListener("click", () =>
        send("case.submission.retry", { case_id: state.case_id }),
      );
      element.querySelector('[data-testid="case-agreement-send"]').addEventListener("click", () =>
        send("case.agreement.send", { case_id: state.case_id }),
      );
      element.querySelector('[data-testid="case-cancel"]').addEventListener("click", () =>
        send("case.cancel", { case_id: state.case_id }),
      );
      element.querySelector("form").addEventListener("submit", (event) => {
        event.preventDefault();
        const params = {};
        for (const control of event.target.querySelectorAll("[name]")) {
          if (control.type === "checkbox") params[control.name] = control.checked;
          else if (control.value !== "") params[control.name] = control.value;
        }
        send("case.fill", { case_id: state.case_id, params });
      });
      card = { element, state: null, formKey: null };
      cards.set(state.case_id, card);
      list.append(element);
    }
    card.state = state;
    const element = card.element;
    element.dataset.testid = `case-${state.business}`;
    element.dataset.caseId = state.case_id;
    element.dataset.status = state.status;
    element.querySelector("[data-case-title]").textContent = pick(state.name) || state.business;
    element.querySelector("[data-case-status]").textContent = pick(state.status_text) || state.status;
    element.querySelector("[data-case-steps]").replaceChildren(
      ...(state.steps || []).map((step) => {
        const item = document.createElement("li");
        item.dataset.step = step.step;
        item.dataset.state = step.state;
        item.className = `case-step case-step-${step.state}`;
        item.textContent = pick(step.label) || step.step;
        return item;
      }),
    );
    const message = element.querySelector("[data-case-message]");
    message.textContent = state.error ? pick(state.error) : pick(state.message) || "";
    message.classList.toggle("case-error-text", Boolean(state.error));
    renderForm(card, state);
    const agreementButton = element.querySelector('[data-testid="case-agreement-send"]');
    agreementButton.hidden = !state.can?.send_agreement;
    agreementButton.disabled = !state.can?.send_agreement;
    const cancelButton = element.querySelector('[data-testid="case-cancel"]');
    cancelButton.hidden = !state.can?.cancel;
    element.querySelector('[data-testid="case-pin-resend"]').hidden = !state.can?.pin_resend;
    element.querySelector('[data-testid="case-submission-retry"]').hidden = !state.can?.submission_retry;
    const receipt = element.querySelector("[data-case-receipt]");
    receipt.hidden = !state.receipt;
    if (state.receipt) {
      receipt.replaceChildren(receiptLinks(state.receipt));
    }
  }

  function receiptLinks(receipt) {
    const span = document.createElement("span");
    span.dataset.testid = "case-receipt-link";
    span.dataset.code = receipt.code;
    const html = document.createElement("a");
    html.href = receipt.url;
    html.target = "_blank";
    html.rel = "noopener";
    html.textContent = `${t("cases.receipt_view")} (${receipt.code})`;
    const pdf = document.createElement("a");
    pdf.href = receipt.pdf_url;
    pdf.textContent = "PDF";
    span.append(html, " · ", pdf);
    return span;
  }

  function renderSummary(message) {
    summary.hidden = false;
    const cases = message.cases || [];
    if (!cases.length) {
      const empty = document.createElement("li");
      empty.textContent = t("cases.none");
      summaryList.replaceChildren(empty);
      return;
    }
    summaryList.replaceChildren(
      ...cases.map((item) => {
        const li = document.createElement("li");
        li.dataset.testid = "call-summary-case";
        li.dataset.status = item.status;
        li.textContent = `${pick(item.name) || item.business}: ${pick(item.status_text) || item.status} `;
        if (item.receipt) li.append(receiptLinks(item.receipt));
        return li;
      }),
    );
  }

  signaling
    .on("case.state", (message) => {
      if (message.call_id !== callId()) return;
      // Different processes send a case's changes (a server, the worker with the core bank's
      // answer): an older state arriving late must not replace a newer one.
      const seen = revisions.get(message.case.case_id) ?? -1;
      if ((message.case.revision ?? 0) < seen) return;
      revisions.set(message.case.case_id, message.case.revision ?? 0);
      renderCard(message.case);
    })
    .on("call.summary", (message) => renderSummary(message))
    .on("error", (message) => {
      if (refs.has(message.ref)) errorText.textContent = message.detail || t("error.generic");
    });

  return {
    owns(ref) {
      return refs.has(ref);
    },
    /** A new call (or none): no cards; the last call's summary stays until the next call. */
    reset({ keepSummary = false } = {}) {
      cards.clear();
      revisions.clear();
      list.replaceChildren();
      errorText.textContent = "";
      panel.hidden = !callId();
      if (!keepSummary) summary.hidden = true;
    },
  };
}

