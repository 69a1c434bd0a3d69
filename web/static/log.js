// Bulk retry progress: polls the job's JSON until it is done. No dependencies.
"use strict";
(function () {
  const box = document.getElementById("bulk-job");
  if (!box) return;
  const bar = document.getElementById("bulk-progress");
  const done = document.getElementById("bulk-done");
  const total = document.getElementById("bulk-total");
  const status = document.getElementById("bulk-status");
  function show(job) {
    bar.max = job.total || 1;
    bar.value = job.total ? job.done : (job.status === "done" ? 1 : 0);
    done.textContent = String(job.done);
    total.textContent = String(job.total);
    status.textContent = job.status;
    box.dataset.status = job.status;
  }
  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((job) => {
        show(job);
        if (job.status !== "done") window.setTimeout(poll, 700);
      })
      .catch(() => window.setTimeout(poll, 3000));
  }
  if (box.dataset.status !== "done") poll();
})();
