/* Traffic charts of a server's Overview and of the instance dashboard: uPlot over /traffic JSON from the call records. */
(function () {
  "use strict";
  function top(list, items) {
    list.textContent = "";
    if (!items.length) { var none = document.createElement("li"); none.textContent = "No calls yet."; list.appendChild(none); return; }
    items.forEach(function (item) {
      var li = document.createElement("li");
      var name = document.createElement("span"); name.textContent = item[0] || "(none)";
      var count = document.createElement("strong"); count.textContent = " " + item[1];
      li.appendChild(name); li.appendChild(count); list.appendChild(li);
    });
  }
  function chart(holder, series, data) {
    holder.textContent = "";
    var width = Math.max(200, holder.clientWidth || 420);
    return new uPlot({width: width, height: 200, series: [{}].concat(series), axes: [{}, {size: 50}],
                      legend: {live: false}}, data, holder);
  }
  function load(card) {
    var hours = card.querySelector("[data-traffic-hours]").value;
    var url = card.getAttribute("data-traffic");
    url += (url.indexOf("?") < 0 ? "?" : "&") + "hours=" + encodeURIComponent(hours);
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (d) {
        card.querySelector("[data-traffic-summary]").textContent =
          d.total + " call" + (d.total === 1 ? "" : "s") + ", " + d.error_total + " not ok, in the last " +
          (d.hours === 1 ? "hour" : d.hours + " hours") + ".";
        chart(card.querySelector('[data-chart="calls"]'),
              [{label: "calls", stroke: "#2563eb", width: 2}, {label: "errors", stroke: "#dc2626", width: 2}],
              [d.times, d.calls, d.errors]);
        chart(card.querySelector('[data-chart="latency"]'),
              [{label: "p50", stroke: "#16a34a", width: 2, spanGaps: true, points: {show: true, size: 5}},
               {label: "p99", stroke: "#9333ea", width: 2, spanGaps: true, points: {show: true, size: 5}}],
              [d.times, d.p50, d.p99]);
        top(card.querySelector('[data-top="tools"]'), d.top_tools);
        top(card.querySelector('[data-top="consumers"]'), d.top_consumers);
        card.setAttribute("data-loaded", String(d.total));
      })
      .catch(function (e) {
        card.querySelector("[data-traffic-summary]").textContent = "The charts could not be loaded (" + e.message + ").";
      });
  }
  function init() {
    document.querySelectorAll("[data-traffic]").forEach(function (card) {
      card.querySelector("[data-traffic-hours]").addEventListener("change", function () { load(card); });
      load(card);
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
