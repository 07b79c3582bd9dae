// The page's text table (server-rendered into #vb-texts) and the language switch.

const table = JSON.parse(document.getElementById("vb-texts")?.textContent || "{}");

export const lang = document.documentElement.lang.startsWith("en") ? "en" : "zh";

/** Text for `key`, with `{name}` placeholders filled from `params`. */
export function t(key, params = {}) {
  let text = table[key] ?? key;
  for (const [name, value] of Object.entries(params)) {
    text = text.replaceAll(`{${name}}`, String(value));
  }
  return text;
}

/** Pick the right language from a {zh, en} pair sent by the server. */
export function pick(pair) {
  return (pair && (pair[lang] || pair.zh || pair.en)) || "";
}

// The switch stores the choice in the `lang` cookie the server reads, then reloads. Pages
// disable it while a call is running: a reload would drop the call.
for (const button of document.querySelectorAll("[data-lang-switch]")) {
  button.addEventListener("click", () => {
    const next = button.dataset.nextLang;
    document.cookie = `lang=${next}; path=/; max-age=31536000; samesite=lax`;
    location.reload();
  });
}

export function setLanguageSwitchEnabled(enabled) {
  for (const button of document.querySelectorAll("[data-lang-switch]")) {
    button.disabled = !enabled;
  }
}

// Large-text mode: the `text` cookie (read by the server for the first paint) and the page's
// class, switched at once without a reload (a reload would drop a running call).
export function setLargeText(on) {
  document.documentElement.classList.toggle("large-text", on);
  document.cookie = `text=${on ? "large" : "normal"}; path=/; max-age=31536000; samesite=lax`;
  for (const button of document.querySelectorAll("[data-text-size]")) {
    button.setAttribute("aria-pressed", String(on));
  }
}

for (const button of document.querySelectorAll("[data-text-size]")) {
  button.addEventListener("click", () => {
    setLargeText(!document.documentElement.classList.contains("large-text"));
  });
}
