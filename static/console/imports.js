// Import page: live progress over the job's WebSocket, and choosing tools in the preview table.
(function () {
  "use strict";
  var job = document.getElementById("import-job");
  if (job && job.dataset.status !== "succeeded" && job.dataset.status !== "failed") {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var done = false;
    var socket = new WebSocket(scheme + location.host + job.dataset.ws);
    socket.onmessage = function (event) {
      var state = JSON.parse(event.data);
      document.getElementById("job-status").textContent = state.status;
      document.getElementById("job-step").textContent = state.progress.step;
      document.getElementById("job-progress").value = state.progress.percent;
      document.getElementById("job-percent").textContent = state.progress.percent + "%";
      if (state.status === "succeeded" || state.status === "failed") {
        done = true;
        socket.close();
        location.reload();  // the preview (or the errors) is rendered by the server
      }
    };
    // Without live messages (a proxy that drops WebSockets, a restart) the page still gets there.
    socket.onclose = function () { if (!done) setTimeout(function () { location.reload(); }, 3000); };
  }
  var table = document.getElementById("preview-table");
  if (!table) return;
  var boxes = Array.prototype.slice.call(table.querySelectorAll("input[name=tool]"));
  var counter = document.getElementById("selected-count");
  function count() { counter.textContent = boxes.filter(function (b) { return b.checked; }).length; }
  function rowOf(box) { return box.closest("tr"); }
  document.querySelectorAll("[data-select]").forEach(function (button) {
    button.addEventListener("click", function () {
      var how = button.dataset.select;
      var tag = document.getElementById("select-tag").value;
      var prefix = document.getElementById("select-prefix").value.trim();
      boxes.forEach(function (box) {
        var row = rowOf(box);
        if (how === "all") box.checked = true;
        else if (how === "none") box.checked = false;
        else if (how === "tag" && tag && (" " + row.dataset.tags + " ").indexOf(" " + tag + " ") >= 0) box.checked = true;
        else if (how === "prefix" && prefix && row.dataset.path.indexOf(prefix) === 0) box.checked = true;
      });
      count();
    });
  });
  boxes.forEach(function (box) { box.addEventListener("change", count); });
  // Send only what says something: the chosen tools, the names that changed, the YAML when it is to be used.
  // A large description would otherwise exceed the form's field and size limits.
  var form = document.getElementById("import-preview");
  if (form.tagName === "FORM") form.addEventListener("submit", function () {
    table.querySelectorAll("input[name^='rename:']").forEach(function (input) {
      var box = rowOf(input).querySelector("input[name=tool]");
      if (!box.checked || input.value === input.defaultValue) input.disabled = true;
    });
    var yaml = document.getElementById("import-yaml");
    var use = document.getElementById("use-yaml");
    if (yaml && (!use || !use.checked)) yaml.disabled = true;
  });
})();
