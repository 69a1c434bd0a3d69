// Bulk retry progress: polls the job's JSON until it is done and every retried
// notification has been sent at least once. No dependencies.
"use strict";
(function () {
  const box = document.getElementById("bulk-job");
  if (!box) return;
  const bar = document.getElementById("bulk-progress");
  const done = document.getElementById("bulk-done");
  const total = document.getElementById("bulk-total");
  const status = document.getElementById("bulk-status");
  const outcomes = document.getElementById("bulk-outcomes");
  function show(job) {
    bar.max = job.total || 1;
    bar.value = job.total ? job.done : (job.status === "done" ? 1 : 0);
    done.textContent = String(job.done);
    total.textContent = String(job.total);
    status.textContent = job.status === "done" ? "finished queuing" : job.status;
    box.dataset.status = job.status;
    outcomes.textContent = job.summary;
    outcomes.dataset.settled = job.settled ? "yes" : "no";
  }
  let polls = 0;
  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((job) => {
        show(job);
        // Quick while it moves; then every 5 s (a worker may be a while getting to them).
        polls += 1;
        if (job.status !== "done" || !job.settled) window.setTimeout(poll, polls < 60 ? 1000 : 5000);
      })
      .catch(() => window.setTimeout(poll, 3000));
  }
  if (box.dataset.status !== "done" || outcomes.dataset.settled !== "yes") poll();
})();

// On a phone the log's filters fold behind a "Filters" button.
(function () {
  const toggle = document.querySelector("[data-filters-toggle]");
  const form = document.getElementById("log-filters");
  if (!toggle || !form) return;
  toggle.addEventListener("click", () => {
    const open = form.classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(open));
  });
})();
