// The relay's status page: polls the status JSON and draws it. No library, no CDN.
// Everything a client sent (authids, URIs, peer addresses) goes into the page as text
// (textContent), never as HTML.
(function () {
  "use strict";

  var body = document.body;
  var jsonUrl = body.getAttribute("data-status-json");
  var params = new URLSearchParams(window.location.search);
  // ?interval=MS polls faster or slower (at least 200 ms); the default is 2 s.
  var interval = Math.max(200, parseInt(params.get("interval") || "2000", 10) || 2000);
  var SVG = "http://www.w3.org/2000/svg";
  var sampleInterval = 2;

  function $(id) { return document.getElementById(id); }

  function setText(id, text) {
    var node = $(id);
    if (node && node.textContent !== String(text)) { node.textContent = String(text); }
  }

  function count(n) {
    if (n === null || n === undefined) { return "\u2013"; }
    if (n >= 1e9) { return (n / 1e9).toFixed(1) + "G"; }
    if (n >= 1e6) { return (n / 1e6).toFixed(1) + "M"; }
    if (n >= 1e4) { return (n / 1e3).toFixed(1) + "k"; }
    return String(n);
  }

  function bytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600);
    var m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    if (d) { return d + "d " + h + "h"; }
    if (h) { return h + "h " + m + "m"; }
    if (m) { return m + "m " + s + "s"; }
    return s + "s";
  }

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (className) { node.className = className; }
    return node;
  }

  // -- charts: small inline SVGs -------------------------------------------------------

  function chart(id, points, series, horizon) {
    var box = $(id);
    var width = 320, height = 90, pad = 4;
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    var max = 0;
    points.forEach(function (p) { series.forEach(function (s) { max = Math.max(max, p[s.key] || 0); }); });
    var top = max > 0 ? max * 1.15 : 1;
    var end = points.length ? points[points.length - 1].t : 0;
    function x(t) { return width - pad - (end - t) / horizon * (width - 2 * pad); }
    function y(v) { return height - pad - (v / top) * (height - 2 * pad); }
    var grid = document.createElementNS(SVG, "line");
    grid.setAttribute("x1", 0); grid.setAttribute("x2", width);
    grid.setAttribute("y1", y(0)); grid.setAttribute("y2", y(0));
    grid.setAttribute("class", "axis");
    svg.appendChild(grid);
    series.forEach(function (s) {
      if (points.length < 1) { return; }
      var coords = points.map(function (p) { return x(p.t).toFixed(1) + "," + y(p[s.key] || 0).toFixed(1); });
      if (points.length === 1) { coords.unshift((x(points[0].t) - 3).toFixed(1) + "," + y(points[0][s.key] || 0).toFixed(1)); }
      var line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", coords.join(" "));
      line.setAttribute("class", "series " + s.className);
      svg.appendChild(line);
    });
    if (points.length < 2) {
      var note = document.createElementNS(SVG, "text");
      note.setAttribute("x", width / 2);
      note.setAttribute("y", height / 2);
      note.setAttribute("text-anchor", "middle");
      note.setAttribute("class", "chart-note");
      note.textContent = "collecting: one point every " + sampleInterval + " s";
      svg.appendChild(note);
    }
    var label = document.createElementNS(SVG, "text");
    label.setAttribute("x", pad + 2);
    label.setAttribute("y", 12);
    label.setAttribute("class", "chart-max");
    label.textContent = "max " + (max >= 100 ? count(Math.round(max)) : String(Math.round(max * 10) / 10));
    svg.appendChild(label);
    box.replaceChildren(svg);
  }

  // -- tables -----------------------------------------------------------------------------

  function table(caption, headers, rows, total, emptyText) {
    var section = el("section", null, "listing");
    var title = el("h3", caption + " (" + total + ")");
    section.appendChild(title);
    if (!rows.length) {
      section.appendChild(el("p", emptyText, "empty"));
      return section;
    }
    var t = el("table");
    var head = el("tr");
    headers.forEach(function (h) { head.appendChild(el("th", h)); });
    var thead = el("thead"); thead.appendChild(head); t.appendChild(thead);
    var tbody = el("tbody");
    rows.forEach(function (cells) {
      var tr = el("tr");
      cells.forEach(function (cell) {
        var td = el("td", cell.text !== undefined ? cell.text : cell);
        if (cell.className) { td.className = cell.className; }
        if (cell.title) { td.title = cell.title; }
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
    t.appendChild(tbody);
    section.appendChild(t);
    if (rows.length < total) { section.appendChild(el("p", "showing " + rows.length + " of " + total, "empty")); }
    return section;
  }

  function realmSection(realm, now) {
    var section = el("section", null, "realm");
    section.setAttribute("data-realm", realm.name);
    var h2 = el("h2", "realm " + realm.name);
    section.appendChild(h2);
    var counts = realm.counts;
    section.appendChild(table(
      "sessions",
      ["id", "authid", "role", "peer", "transport", "connected", "msgs in / out", "bytes in / out", "pending calls", "dropped"],
      realm.sessions.map(function (s) {
        return [
          {text: s.id, className: "num mono"},
          s.authid === null ? "\u2013" : s.authid,
          s.authrole === null ? "\u2013" : s.authrole,
          {text: s.peer, className: "mono"},
          s.transport + (s.serializer ? " / " + s.serializer : "") + (s.traced ? " (traced)" : ""),
          {text: s.connected_since ? duration(now - s.connected_since) : "\u2013",
           title: s.connected_since ? new Date(s.connected_since * 1000).toISOString() : ""},
          {text: count(s.messages_in) + " / " + count(s.messages_out), className: "num"},
          {text: bytes(s.bytes_in) + " / " + bytes(s.bytes_out), className: "num"},
          {text: s.pending_calls, className: "num"},
          {text: s.dropped_events, className: s.dropped_events ? "num warn" : "num"}
        ];
      }),
      counts.sessions, "no sessions"));
    section.appendChild(table(
      "registrations",
      ["procedure", "match", "invoke", "callees", "calls", "errors"],
      realm.registrations.map(function (r) {
        return [
          {text: r.uri, className: "mono"}, r.match, r.invoke,
          {text: r.callees.join(", "), className: "mono"},
          {text: r.calls, className: "num"},
          {text: r.errors, className: r.errors ? "num warn" : "num"}
        ];
      }),
      counts.registrations, "no registrations"));
    section.appendChild(table(
      "subscriptions",
      ["topic", "match", "subscribers", "events delivered"],
      realm.subscriptions.map(function (s) {
        return [
          {text: s.uri, className: "mono"}, s.match,
          {text: s.subscribers, className: "num", title: s.subscriber_ids.join(", ")},
          {text: s.delivered, className: "num"}
        ];
      }),
      counts.subscriptions, "no subscriptions"));
    return section;
  }

  // -- one update ---------------------------------------------------------------------------

  function render(data) {
    var relay = data.relay, totals = data.totals;
    var state = $("state");
    state.textContent = relay.serving ? "serving" : "shutting down";
    state.className = "badge " + (relay.serving ? "ok" : "warn");
    var facts = relay.agent + " " + relay.version + " \u00b7 up " + duration(relay.uptime);
    if (relay.listeners.length) { facts += " \u00b7 " + relay.listeners.join(", "); }
    setText("relay-facts", facts);

    setText("session-count", totals.sessions);
    setText("connection-count", totals.connections);
    setText("registration-count", totals.registrations);
    setText("subscription-count", totals.subscriptions);
    setText("pending-calls", totals.pending_calls);
    setText("messages", count(totals.messages_in) + " / " + count(totals.messages_out));
    setText("bytes", bytes(totals.bytes_in) + " / " + bytes(totals.bytes_out));
    var failed = totals.calls_total - totals.calls.result;
    setText("calls", count(totals.calls_total) + " (" + count(failed) + ")");
    setText("events", count(totals.events_published) + " / " + count(totals.events_delivered));
    setText("dropped-events", count(totals.dropped_events));
    setText("auth-failures", count(totals.auth_failures));
    setText("protocol-errors", count(totals.protocol_errors));

    var points = data.history.points;
    sampleInterval = data.history.interval;
    var horizon = data.history.seconds;
    chart("chart-messages", points, [{key: "messages_in_rate", className: "in"}, {key: "messages_out_rate", className: "out"}], horizon);
    chart("chart-calls", points, [{key: "calls_rate", className: "in"}, {key: "events_rate", className: "out"}], horizon);
    chart("chart-sessions", points, [{key: "sessions", className: "in"}], horizon);

    var realms = $("realms");
    realms.replaceChildren.apply(realms, data.realms.map(function (realm) { return realmSection(realm, relay.now); }));

    setText("updated", new Date(relay.now * 1000).toLocaleTimeString());
    body.setAttribute("data-sessions", String(totals.sessions));
    body.setAttribute("data-updates", String(parseInt(body.getAttribute("data-updates"), 10) + 1));
  }

  function poll() {
    fetch(jsonUrl, {cache: "no-store", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(render)
      .catch(function (error) {
        var state = $("state");
        state.textContent = "relay unreachable (" + error.message + ")";
        state.className = "badge warn";
      })
      .then(function () { window.setTimeout(poll, interval); });
  }

  setText("interval", interval / 1000);
  poll();
}());
