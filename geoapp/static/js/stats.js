// /stats and /stats/bulletin: the monthly trend charts (Apache ECharts, served by this server from
// static/vendor/). The numbers come from the page's JSON block (#stats-data); the tables and figures
// are in the page itself, so the page reads the same without this script. The SVG renderer is used so
// a printed bulletin gets sharp vector charts; nothing here evaluates code or writes HTML.
(function () {
  "use strict";
  var block = document.getElementById("stats-data");
  if (!block || !window.echarts) return;
  var data = JSON.parse(block.textContent);
  var t = data.trend, L = t.labels;
  var charts = [];
  var base = {
    animation: !data.print,
    textStyle: {fontFamily: "Noto Sans CJK SC, Noto Sans SC, sans-serif"},
    grid: {left: 48, right: 48, top: 40, bottom: 36},
    tooltip: {trigger: "axis"},
    legend: {top: 0},
    xAxis: {type: "category", data: t.months}
  };
  function pct(v) { return v === null || v === undefined ? null : Math.round(v * 1000) / 10; }

  function make(id, option) {
    var el = document.getElementById(id);
    if (!el) return;
    var chart = window.echarts.init(el, null, {renderer: data.renderer || "svg"});
    chart.setOption(Object.assign({}, base, option));
    charts.push(chart);
  }

  make("chart-counts", {
    yAxis: [{type: "value", name: L.count, minInterval: 1},
            {type: "value", name: L.rate, min: 0, max: 100, axisLabel: {formatter: "{value}%"}}],
    series: [
      {name: L.handed_over, type: "bar", data: t.handed_over, itemStyle: {color: "#8fa9d6"}},
      {name: L.handled, type: "bar", data: t.handled, itemStyle: {color: "#1d2b4f"}},
      {name: L.completion_rate, type: "line", yAxisIndex: 1, data: t.completion_rate.map(pct),
       itemStyle: {color: "#2da44e"}, connectNulls: false}
    ]
  });
  make("chart-rates", {
    yAxis: {type: "value", min: 0, max: 100, axisLabel: {formatter: "{value}%"}},
    series: [
      {name: L.completion_rate, type: "line", data: t.completion_rate.map(pct), itemStyle: {color: "#2da44e"}},
      {name: L.on_time_rate, type: "line", data: t.on_time_rate.map(pct), itemStyle: {color: "#d4380d"}}
    ]
  });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  // before printing, fit the charts to the printed width (the print stylesheet sets it); after, back
  if (window.matchMedia) {
    var mq = window.matchMedia("print");
    var refit = function () { charts.forEach(function (c) { c.resize(); }); };
    if (mq.addEventListener) mq.addEventListener("change", refit);
  }
  window.addEventListener("beforeprint", function () { charts.forEach(function (c) { c.resize(); }); });
  window.addEventListener("afterprint", function () { charts.forEach(function (c) { c.resize(); }); });
  var button = document.getElementById("print-button");
  if (button) button.addEventListener("click", function () { window.print(); });
  document.documentElement.setAttribute("data-charts", String(charts.length));
})();
