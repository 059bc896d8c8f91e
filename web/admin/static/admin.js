// Progressive enhancement only: every page works without this file.
// - A form with data-confirm asks before it is sent.
// - A sent form's buttons are disabled, so a double click does not send it twice.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) {
    return;
  }
  const question = form.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
    return;
  }
  if (form.method.toLowerCase() === "post") {
    for (const button of form.querySelectorAll("button[type=submit]")) {
      // After the browser has taken the submitter's name and value.
      window.setTimeout(() => {
        button.disabled = true;
        button.dataset.sent = "";
      }, 0);
    }
  }
});

// Back to a page kept by the browser: its sent buttons work again.
window.addEventListener("pageshow", () => {
  for (const button of document.querySelectorAll("button[data-sent]")) {
    button.disabled = false;
    delete button.dataset.sent;
  }
});

// A select in a filter form with data-autosubmit applies itself on change.
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLSelectElement && field.form && field.hasAttribute("data-autosubmit")) {
    field.form.requestSubmit();
  }
});
