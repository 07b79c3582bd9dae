// The e-receipt page's "Print" button (a script file, not a javascript: link: the page's
// Content-Security-Policy allows no inline script).
for (const button of document.querySelectorAll("[data-print]")) {
  button.addEventListener("click", () => window.print());
}
