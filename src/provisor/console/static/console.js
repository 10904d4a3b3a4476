/* provisor console: the only script. No inline code anywhere (the CSP forbids it); every
   value from the server is put into the page with textContent, never as HTML. */
"use strict";

function startLive(table) {
  const body = table.querySelector("tbody");
  const status = document.getElementById("live-status");
  const pause = document.getElementById("live-pause");
  const src = table.dataset.stream;
  let paused = false;
  const events = new EventSource(src);
  const columns = ["time", "protocol", "client_ip", "device_id", "path", "status", "reason",
                   "user_agent"];
  events.addEventListener("request", (event) => {
    if (paused) return;
    const entry = JSON.parse(event.data);
    const row = document.createElement("tr");
    if (entry.status >= 400) row.className = "state-failing";
    for (const name of columns) {
      const cell = document.createElement("td");
      cell.textContent = entry[name] === null || entry[name] === undefined ? "" : String(entry[name]);
      row.appendChild(cell);
    }
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > 500) body.deleteRow(body.rows.length - 1);
  });
  events.addEventListener("open", () => { status.textContent = "connected"; });
  events.addEventListener("error", () => { status.textContent = "reconnecting…"; });
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", paused ? "true" : "false");
    status.textContent = paused ? "paused" : "connected";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live-table");
  if (live) startLive(live);
});
