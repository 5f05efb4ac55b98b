// The operational dashboard: reads the JSON endpoints of the built-in
// REST API and renders them; no build step, no network beyond this server.
"use strict";
(function () {
  var $ = function (sel) { return document.querySelector(sel); };
  function h(tag, attrs, children) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "class") e.className = attrs[k];
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function row(cells, attrs) {
    return h("tr", attrs, cells.map(function (c) {
      if (c instanceof Node) return h("td", {}, [c]);
      if (typeof c === "number") return h("td", { class: "num", text: String(c) });
      return h("td", { text: c === undefined || c === null ? "" : String(c) });
    }));
  }
  function fill(sel, rows) {
    var tb = $(sel + " tbody");
    tb.replaceChildren.apply(tb, rows);
  }
  function ms(v) {
    if (v === undefined || v === null) return "";
    if (v >= 1000) return (v / 1000).toFixed(1) + " s";
    return Math.round(v) + " ms";
  }
  function getJSON(url) {
    return fetch(url, { cache: "no-store" }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(url + ": " + (body && body.error ? body.error : r.status));
        return body;
      });
    });
  }
  // poll runs fn (returning a promise) every period ms while page is
  // shown, never overlapping a previous run (as libmtev's dashboard).
  var pollers = [];
  function poll(page, period, fn) {
    var p = { page: page, period: period, fn: fn, busy: false, timer: null };
    pollers.push(p);
    return p;
  }
  function runPoller(p) {
    if (p.busy || current !== p.page) return;
    p.busy = true;
    p.fn().then(function () { setConn(true); }, function (e) { setConn(false, e); })
      .then(function () { p.busy = false; });
  }
  function setConn(ok, err) {
    var c = $("#conn");
    c.textContent = ok ? "live · " + new Date().toLocaleTimeString() : "error: " + err.message;
    c.className = "status " + (ok ? "" : "bad");
  }
  var current = null;
  function show(page) {
    if (!document.getElementById("page-" + page)) page = "overview";
    current = page;
    document.querySelectorAll(".page").forEach(function (s) { s.classList.toggle("active", s.id === "page-" + page); });
    document.querySelectorAll("nav a").forEach(function (a) { a.classList.toggle("active", a.dataset.page === page); });
    pollers.forEach(function (p) {
      clearInterval(p.timer);
      if (p.page === page) { runPoller(p); p.timer = setInterval(function () { runPoller(p); }, p.period); }
    });
    if (page === "logs") startLogs(); else stopLogs();
    if (page === "console") startConsole();
  }
  window.addEventListener("hashchange", function () { show(location.hash.slice(1)); });

  // Overview.
  function heartRows(hearts) {
    return hearts.map(function (hb) {
      var frac = hb.timeout_ms ? Math.min(1, hb.age_ms / hb.timeout_ms) : 0;
      var cls = frac >= 1 ? "bad" : frac > 0.5 ? "warn" : "ok";
      return row([hb.name, hb.loop || "", hb.state, h("span", { class: cls, text: ms(hb.age_ms) }), ms(hb.timeout_ms),
        h("span", { class: "bar" + (frac >= 1 ? " bad" : ""), style: "width:" + Math.max(1, Math.round(frac * 120)) + "px" })],
        { "data-heart": hb.name });
    });
  }
  function flatten(obj, prefix, out) {
    for (var k in obj) {
      var v = obj[k], path = prefix ? prefix + "/" + k : k;
      if (v && typeof v === "object" && !Array.isArray(v) && !("_type" in v)) flatten(v, path, out);
      else out.push({ path: path, v: v });
    }
    return out;
  }
  var statsData = [];
  function renderStats() {
    var re = null;
    try { re = new RegExp($("#stats-filter").value || ".", "i"); } catch (e) { re = /./; }
    var charts = [], rows = [];
    statsData.forEach(function (s) {
      if (!re.test(s.path)) return;
      var t = s.v._type;
      if (t === "H" || t === "h") {
        var bins = mtevChart.parseBins(s.v._value);
        var n = bins.reduce(function (a, b) { return a + b.n; }, 0);
        if (!n && charts.length > 40) return;
        var title = s.path + "  (n=" + n + (n ? ", p50 " + mtevChart.fmt(mtevChart.quantile(bins, 0.5)) + ", p99 " + mtevChart.fmt(mtevChart.quantile(bins, 0.99)) : "") + ")";
        if (n) charts.push(h("div", { class: "chart", "data-stat": s.path }, [h("div", { class: "title", text: title }), mtevChart.histogram(s.v._value)]));
        rows.push(row([s.path, "histogram", n + " samples"]));
      } else {
        rows.push(row([s.path, t, s.v._value === null ? "null" : s.v._value]));
      }
    });
    var box = $("#histograms");
    box.replaceChildren.apply(box, charts.slice(0, 60));
    fill("#stats-table", rows);
  }
  $("#stats-filter").addEventListener("input", renderStats);
  $("#stats-reset").addEventListener("click", function () {
    fetch("/mtev/stats.json", { method: "DELETE" }).then(function () { runPoller(statsPoller); });
  });
  poll("overview", 2000, function () {
    return Promise.all([getJSON("/mtev/status.json"), getJSON("/mtev/hearts.json").catch(function () { return []; })]).then(function (r) {
      var st = r[0];
      document.title = (st.service || "mtev") + " · dashboard";
      $("#brand").textContent = st.service || "mtev";
      var cards = [["service", st.service || "?"], ["version", st.version || "-"], ["uptime", ms(st.uptime_ms)],
        ["start count", st.start_count], ["supervised", st.supervised ? "yes" : "no"], ["pid", st.pid],
        ["goroutines", st.goroutines], ["go", st.go_version]];
      var box = $("#service-cards");
      box.replaceChildren.apply(box, cards.map(function (c) {
        return h("div", { class: "card", "data-card": c[0] }, [h("div", { class: "k", text: c[0] }), h("div", { class: "v", text: String(c[1]) })]);
      }));
      fill("#overview-hearts", heartRows(r[1]));
    });
  });
  var statsPoller = poll("overview", 10000, function () {
    return getJSON("/mtev/stats.json").then(function (s) { statsData = flatten(s, "", []); renderStats(); });
  });

  // Internals.
  poll("internals", 1000, function () {
    return Promise.all([getJSON("/eventer/pools.json"), getJSON("/mtev/hearts.json").catch(function () { return []; })]).then(function (r) {
      var ages = {};
      r[1].forEach(function (hb) { ages[hb.name] = hb; });
      var box = $("#pools");
      box.replaceChildren.apply(box, r[0].map(function (p) {
        var t = h("table", { class: "grid" }, [h("thead", {}, [row(["loop", "thread", "heart age", "beats", "callbacks", "slow", "running", "timers", "fds"])]),
          h("tbody", {}, p.loops.map(function (l) {
            var hb = ages[l.name];
            var age = hb ? h("span", { class: hb.age_ms >= hb.timeout_ms ? "bad" : "", text: ms(hb.age_ms) }) : "";
            return row([l.name, l.thread_id || "", age, l.beats, l.callbacks, l.slow,
              l.running ? l.running + " for " + ms(l.running_ms) : (l.responsive ? "" : "unresponsive"), l.timers, l.fds], { "data-loop": l.name });
          }))]);
        return h("div", { class: "pool" }, [h("div", {}, [h("b", { text: p.name }), " · " + p.concurrency + " loops · timeout " + ms(p.timeout_ms) +
          " · cycle p50 " + mtevChart.fmt(p.cycletime_p50) + ", p99 " + mtevChart.fmt(p.cycletime_p99)]), t]);
      }));
    });
  });
  poll("internals", 5000, function () {
    return Promise.all([getJSON("/eventer/jobq.json"), getJSON("/eventer/timers.json"), getJSON("/eventer/sockets.json")]).then(function (r) {
      fill("#jobqs", Object.keys(r[0]).sort().map(function (n) {
        var q = r[0][n];
        return row([n, q.mode, q.concurrency, q.desired_concurrency, q.min_concurrency, q.max_concurrency, q.backlog, q.inflight, q.total_jobs, q.timeouts,
          q.avg_wait_ms.toFixed(3) + " ms", q.avg_run_ms.toFixed(3) + " ms"]);
      }));
      var now = Date.now();
      fill("#timers", r[1].map(function (t) { return row([t.callback, t.loop, ms(t.whence - now), t.period_ms ? ms(t.period_ms) : "", t.fires]); }));
      var addr = function (a) { return a ? a.address + (a.port ? ":" + a.port : "") : ""; };
      fill("#sockets", r[2].map(function (s) { return row([s.fd, s.callback, s.loop, addr(s.local), addr(s.remote), s.mask]); }));
    });
  });

  // Logs: a memory outlet followed over a websocket.
  var ws = null, lastIdx = 0, outlet = null;
  function appendLines(lines) {
    var pre = $("#log-lines");
    var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 5;
    lines.forEach(function (l) { pre.appendChild(document.createTextNode("[" + l.idx + "] " + l.line)); lastIdx = l.idx; });
    while (pre.childNodes.length > 1000) pre.removeChild(pre.firstChild);
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }
  function stopLogs() { if (ws) { ws.onclose = null; ws.close(); ws = null; } }
  function startLogs() {
    stopLogs();
    getJSON("/eventer/logs.json").then(function (names) {
      var sel = $("#log-outlet");
      if (!sel.options.length) sel.replaceChildren.apply(sel, names.map(function (n) { return h("option", { value: n, text: n }); }));
      if (!names.length) { $("#log-state").textContent = "no memory outlet configured"; return; }
      if (outlet !== sel.value) { outlet = sel.value; lastIdx = 0; $("#log-lines").replaceChildren(); }
      if (!$("#log-follow").checked) return;
      var proto = location.protocol === "https:" ? "wss:" : "ws:";
      ws = new WebSocket(proto + "//" + location.host + "/eventer/logs/" + encodeURIComponent(outlet) + ".ws?since=" + lastIdx);
      ws.onopen = function () { $("#log-state").textContent = "following " + outlet; };
      ws.onmessage = function (m) {
        var v = JSON.parse(m.data);
        if (Array.isArray(v)) appendLines(v);
        else if (v.skipped) appendLines([{ idx: "…", line: "(" + v.skipped + " lines evicted before they were read)\n" }]);
      };
      ws.onclose = function () { $("#log-state").textContent = "disconnected; retrying"; ws = null; setTimeout(function () { if (current === "logs") startLogs(); }, 2000); };
    }, function (e) { setConn(false, e); });
  }
  $("#log-outlet").addEventListener("change", startLogs);
  $("#log-follow").addEventListener("change", function () { if (this.checked) startLogs(); else { stopLogs(); $("#log-state").textContent = "paused"; } });

  // Incidents.
  function detail(i) {
    if (i.stall) return i.stall.stage + " stall of " + (i.stall.heart || i.stall.source) + " (" + ms(i.stall.age_ms) + " / " + ms(i.stall.timeout_ms) + ")";
    return i.exit || "";
  }
  function culprit(c) { return c ? (c.top || "goroutine " + c.id) : ""; }
  function showIncident(id) {
    getJSON("/mtev/incidents.json?id=" + encodeURIComponent(id)).then(function (i) {
      var rec = i.record, box = $("#incident-detail");
      var gs = (rec.goroutines || []).slice(0, 200).map(function (g) {
        var labels = g.labels ? Object.keys(g.labels).map(function (k) { return k + "=" + g.labels[k]; }).join(" ") : "";
        return h("div", { class: "goroutine" + (g.culprit ? " culprit" : ""), "data-goroutine": g.id }, [
          h("div", {}, [h("b", { text: "goroutine " + g.id + " [" + g.state + (g.wait_reason ? ", " + g.wait_reason : "") + "]" + (g.culprit ? " ← culprit" : "") }), labels ? "  " + labels : ""]),
          h("pre", { text: (g.frames || []).map(function (f) { return f.function + "\n\t" + f.file + ":" + f.line; }).join("\n") })]);
      });
      box.replaceChildren.apply(box, [h("h2", { text: "Incident " + rec.id + " · " + rec.reason + " · " + detail(i) })].concat(gs));
      box.scrollIntoView();
    }, function (e) { setConn(false, e); });
  }
  poll("incidents", 5000, function () {
    return getJSON("/mtev/incidents.json").then(function (d) {
      fill("#groups", d.groups.map(function (g) {
        return row([g.count, g.reason, h("code", { text: g.fingerprint }), culprit(g.culprit), new Date(g.last).toLocaleString()],
          { class: "clickable", onclick: function () { showIncident(g.last_id); } });
      }));
      fill("#incidents", d.incidents.map(function (i) {
        return row([new Date(i.time).toLocaleString(), i.reason, i.action, i.pid, i.start_count, detail(i), culprit(i.culprit), h("code", { text: i.fingerprint || "" })],
          { class: "clickable", "data-incident": i.id, onclick: function () { showIncident(i.id); } });
      }));
    });
  });

  show(location.hash.slice(1) || "overview");

  // The console page: libmtev's JSON messages over the /mtev/console
  // websocket ({"id","command"} out; "text", "error" and "done" back).
  var cws = null, cid = 0;
  function consoleOut(text, cls) {
    var out = $("#console-out");
    out.appendChild(h("span", { class: cls || "", text: text }));
    out.scrollTop = out.scrollHeight;
  }
  function startConsole() {
    if (cws) return;
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    cws = new WebSocket(proto + "//" + location.host + "/mtev/console");
    $("#console-state").textContent = "connecting";
    cws.onopen = function () { $("#console-state").textContent = "connected"; $("#console-form").className = "connected"; $("#console-line").focus(); };
    cws.onmessage = function (ev) {
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.text) consoleOut(m.text, "out");
      if (m.error) consoleOut(m.error + "\n", "bad");
      if (m.done) $("#console-state").textContent = "connected";
    };
    cws.onclose = function () { $("#console-state").textContent = "not connected (no console served, or it ended)"; $("#console-form").className = ""; cws = null; };
  }
  $("#console-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var line = $("#console-line").value.trim();
    if (!line || !cws || cws.readyState !== 1) return;
    consoleOut("# " + line + "\n", "muted");
    $("#console-state").textContent = "running";
    cws.send(JSON.stringify({ id: ++cid, command: line.split(/\s+/), complete: false }));
    $("#console-line").value = "";
  });
})();
