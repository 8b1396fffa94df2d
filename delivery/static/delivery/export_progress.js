// Refresh the progress bars of running exports on the export-job list (R-AUD-2).
(function () {
  function poll() {
    var bars = document.querySelectorAll("progress.export-progress");
    var pending = 0;
    bars.forEach(function (bar) {
      if (bar.value >= 100) { return; }
      var row = bar.closest("tr");
      var state = row && row.querySelector(".export-state");
      if (state && (state.dataset.state === "failed")) { return; }
      pending += 1;
      fetch(bar.dataset.job + "/progress/", {credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (j) {
          bar.value = j.percent;
          bar.nextSibling.textContent = " " + j.percent + "%";
          if (j.state === "done" || j.state === "failed") { window.location.reload(); }
        });
    });
    if (pending) { setTimeout(poll, 2000); }
  }
  document.addEventListener("DOMContentLoaded", function () { setTimeout(poll, 1000); });
})();
