// Report-deadline countdowns on the incidents board: the only script of the console.
// Counts from the server's clock (sent with the page), so a wrong PC clock does not mislead on-call.
"use strict";
const skew = Number(document.body.dataset.serverNow || 0) - Date.now() / 1000;
function pad(n) { return String(n).padStart(2, "0"); }
function tick() {
  const now = Date.now() / 1000 + skew;
  document.querySelectorAll("[data-deadline]").forEach(function (el) {
    let left = Math.round(Number(el.dataset.deadline) - now);
    const out = el.querySelector(".countdown");
    if (!out) return;
    let prefix = "";
    if (left < 0) { prefix = el.dataset.overdue + " "; left = -left; el.classList.add("overdue"); }
    out.textContent = prefix + pad(Math.floor(left / 3600)) + ":" + pad(Math.floor(left % 3600 / 60)) + ":" + pad(left % 60);
  });
}
document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 1000); });
