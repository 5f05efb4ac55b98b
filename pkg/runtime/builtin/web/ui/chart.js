// Plain SVG histogram charts for circonusllhist bins ("H[1.2e-05]=3").
// Bins are drawn in value order, one bar per non-empty bin, with a
// logarithmic count axis; the x labels are the bins' lower bounds.
"use strict";
var mtevChart = (function () {
  var NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function parseBins(strs) {
    var out = [];
    (strs || []).forEach(function (s) {
      var m = /^H\[([^\]]+)\]=(\d+)$/.exec(s);
      if (m) out.push({ v: parseFloat(m[1]), n: parseInt(m[2], 10) });
    });
    out.sort(function (a, b) { return a.v - b.v; });
    return out;
  }
  function num(v) { return String(Number(v.toPrecision(2))); }
  function fmt(v) {
    if (v === 0) return "0";
    var a = Math.abs(v);
    if (a >= 1) return num(v) + "s";
    if (a >= 1e-3) return num(v * 1e3) + "ms";
    if (a >= 1e-6) return num(v * 1e6) + "µs";
    return num(v * 1e9) + "ns";
  }
  function quantile(bins, q) {
    var total = bins.reduce(function (s, b) { return s + b.n; }, 0);
    var want = q * total, seen = 0;
    for (var i = 0; i < bins.length; i++) {
      seen += bins[i].n;
      if (seen >= want) return bins[i].v;
    }
    return bins.length ? bins[bins.length - 1].v : 0;
  }
  // histogram returns an <svg> of the bins, width × height pixels.
  function histogram(strs, width, height) {
    var bins = parseBins(strs);
    width = width || 320; height = height || 110;
    var pad = { l: 4, r: 4, t: 6, b: 16 };
    var svg = el("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img" });
    if (!bins.length) {
      svg.appendChild(el("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "no samples"));
      return svg;
    }
    var max = Math.max.apply(null, bins.map(function (b) { return b.n; }));
    var h = height - pad.t - pad.b, w = (width - pad.l - pad.r) / bins.length;
    bins.forEach(function (b, i) {
      var bh = Math.max(1, h * Math.log(1 + b.n) / Math.log(1 + max));
      var r = el("rect", { class: "b", x: pad.l + i * w + 0.5, y: pad.t + h - bh, width: Math.max(1, w - 1), height: bh });
      r.appendChild(el("title", {}, "[" + fmt(b.v) + "] " + b.n));
      svg.appendChild(r);
    });
    svg.appendChild(el("text", { x: pad.l, y: height - 3 }, fmt(bins[0].v)));
    svg.appendChild(el("text", { x: width - pad.r, y: height - 3, "text-anchor": "end" }, fmt(bins[bins.length - 1].v)));
    return svg;
  }
  return { histogram: histogram, parseBins: parseBins, quantile: quantile, fmt: fmt };
})();
