// Live updates: the server pushes events over a websocket; this repaints what they change.
(function () {
  "use strict";
  const state = document.getElementById("live-state");
  let delay = 1000;

  function cookie(name) {
    const match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    (children || []).forEach((c) => node.append(c));
    return node;
  }

  function removeForm(template, name) {
    const form = el("form", { method: "post", action: template.replace("/NAME/", "/" + encodeURIComponent(name) + "/") });
    form.addEventListener("submit", (e) => { if (!confirm("Remove " + name + " from the household?")) e.preventDefault(); });
    form.append(el("input", { type: "hidden", name: "csrfmiddlewaretoken", value: cookie("csrftoken") }));
    form.append(el("button", { type: "submit", class: "danger" }, ["Remove"]));
    return form;
  }

  function paintPeers(peers) {
    document.querySelectorAll('table[data-live="peers"]').forEach((table) => {
      const removeUrl = table.dataset.removeUrl;
      const body = table.tBodies[0];
      body.replaceChildren();
      if (!peers.length) {
        body.append(el("tr", { class: "empty" }, [el("td", { colspan: "4", class: "muted" }, ["No peers yet."])]));
      }
      peers.forEach((p) => {
        const address = p.address ? p.address : el("span", { class: "muted" }, ["deaf"]);
        const cells = [el("td", {}, [p.name]), el("td", {}, [el("code", {}, [p.peer_id])]), el("td", {}, [address]),
          el("td", { "data-conn": "" }), el("td", { class: "num", "data-traffic": "" })];
        if (removeUrl) cells.push(el("td", {}, [removeForm(removeUrl, p.name)]));
        body.append(el("tr", { "data-peer": p.name }, cells));
      });
    });
    paintConnections();
  }

  // Who is connected, since when and where, and the bytes each way (peerd tells every few
  // seconds; a rate is the change since the last word).
  let connections = {}, traffic = {}, told = 0, rates = {};
  const initial = document.getElementById("peer-connections");
  if (initial) {
    const state = JSON.parse(initial.textContent);
    connections = state.connections || {}; traffic = state.traffic || {};
  }

  function paintConnections() {
    document.querySelectorAll('table[data-live="peers"] tr[data-peer]').forEach((row) => {
      const name = row.dataset.peer, state = connections[name] || {}, moved = traffic[name];
      const conn = row.querySelector("[data-conn]"), bytesCell = row.querySelector("[data-traffic]");
      if (conn) {
        if (state.since) {
          conn.replaceChildren(el("span", { class: "status done" }, ["connected"]), " since ",
            timeNode(new Date(state.since * 1000).toISOString()), " at " + state.address);
        } else if (state.last_seen) {
          conn.replaceChildren(el("span", { class: "status" }, ["not connected"]), " last seen ",
            timeNode(new Date(state.last_seen * 1000).toISOString()));
        } else {
          conn.replaceChildren(el("span", { class: "status" }, ["not connected"]));
        }
      }
      if (bytesCell) {
        const rate = rates[name];
        bytesCell.textContent = moved ? bytes(moved.sent) + " / " + bytes(moved.received) +
          (rate ? " (" + bytes(rate.sent) + "/s / " + bytes(rate.received) + "/s)" : "") : "";
      }
    });
  }

  function onConnections(m) {
    const seconds = told ? m.at - told : 0;
    rates = {};
    if (seconds > 0) {
      for (const [name, now] of Object.entries(m.traffic || {})) {
        const before = traffic[name];
        if (before) rates[name] = { sent: Math.max(0, Math.round((now.sent - before.sent) / seconds)),
          received: Math.max(0, Math.round((now.received - before.received) / seconds)) };
      }
    }
    connections = m.connections || {}; traffic = m.traffic || {}; told = m.at;
    paintConnections();
  }

  function paintLocal(local) {
    if (!local) return;
    document.querySelectorAll('[data-live="local"] [data-field]').forEach((node) => {
      const value = local[node.dataset.field];
      if (node.dataset.field === "listen_address" && !value) {
        node.replaceChildren(el("span", { class: "muted" }, ["nowhere (deaf: connects out only)"]));
      } else {
        node.textContent = value;
      }
    });
  }

  // Times are sent and rendered as ISO instants; show them in the browser's own time zone.
  function pad(n) { return String(n).padStart(2, "0"); }

  function localTime(iso) {
    const d = new Date(iso);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function timeNode(iso) {
    return el("time", { datetime: iso }, [localTime(iso)]);
  }

  // A chart's time labels show a part of it: the time ("14:20") or the date.
  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((node) => {
      const full = localTime(node.getAttribute("datetime")), part = node.dataset.part;
      node.textContent = part === "time" ? full.slice(11, 16) : part === "date" ? full.slice(0, 10) : full;
    });
  }

  // As Django's filesizeformat.
  function bytes(n) {
    if (n < 1024) return n + (n === 1 ? "\u00a0byte" : "\u00a0bytes");
    const units = ["KB", "MB", "GB", "TB", "PB"];
    let value = n / 1024, i = 0;
    while (value >= 1024 && i < units.length - 1) { value /= 1024; i++; }
    return value.toFixed(1) + "\u00a0" + units[i];
  }

  function files(n, size) {
    return n + (n === 1 ? " file, " : " files, ") + bytes(size);
  }

  function paintStrangers(strangers) {
    if (!strangers) return;
    document.querySelectorAll('[data-live="strangers-card"]').forEach((card) => { card.hidden = !strangers.length; });
    document.querySelectorAll('table[data-live="strangers"]').forEach((table) => {
      const body = table.tBodies[0];
      body.replaceChildren();
      strangers.forEach((s) => {
        const query = new URLSearchParams({ peer_id: s.peer_id });
        if (s.direction === "outgoing" && s.address) query.set("address", s.address);
        const add = el("a", { class: "button", href: table.dataset.addUrl + "?" + query + "#add-peer" }, ["Add this peer"]);
        body.append(el("tr", { "data-stranger": s.peer_id }, [
          el("td", {}, [el("code", {}, [s.peer_id])]),
          el("td", {}, [s.address || ""]),
          el("td", {}, [s.direction]),
          el("td", { class: "num" }, [String(s.attempts)]),
          el("td", {}, [timeNode(s.last_seen)]),
          el("td", {}, [add]),
        ]));
      });
    });
  }

  function runRow(table, run) {
    const cells = [];
    if (table.dataset.areaUrl) {
      const href = table.dataset.areaUrl.replace("/NAME/", "/" + encodeURIComponent(run.area) + "/");
      cells.push(el("td", {}, [el("a", { href: href }, [run.area])]));
    }
    const status = [el("span", { class: "status " + run.status }, [run.status])];
    if (run.error) status.push(el("div", { class: "error" }, [run.error]));
    cells.push(
      el("td", {}, [run.peer]),
      el("td", {}, [run.trigger]),
      el("td", {}, status),
      el("td", {}, [run.started_at ? timeNode(run.started_at) : el("span", { class: "muted" }, ["queued"])]),
      el("td", {}, run.finished_at ? [timeNode(run.finished_at)] : []),
    );
    if (run.finished_at) {
      cells.push(
        el("td", { class: "nowrap" }, [files(run.files_in, run.bytes_in)]),
        el("td", { class: "nowrap" }, [files(run.files_out, run.bytes_out)]),
        el("td", { class: "num" }, [String(run.conflicts)]),
      );
    } else {
      cells.push(el("td"), el("td"), el("td"));
    }
    return el("tr", { "data-run": String(run.id) }, cells);
  }

  // Insert a run at the top, or repaint its row where it is.
  function paintRun(run) {
    document.querySelectorAll('table[data-live="runs"]').forEach((table) => {
      if (table.dataset.area && table.dataset.area !== run.area) return;
      const body = table.tBodies[0];
      const row = runRow(table, run);
      const old = body.querySelector('tr[data-run="' + run.id + '"]');
      if (old) { old.replaceWith(row); return; }
      body.querySelectorAll("tr.empty").forEach((r) => r.remove());
      body.prepend(row);
      const limit = Number(table.dataset.limit) || 20;
      while (body.rows.length > limit) body.lastElementChild.remove();
    });
  }

  // Area rows carry counts only the server knows: fetch the page again and take its table.
  // After a reconnect, every live table: events sent meanwhile were lost.
  let refreshing = false, again = null;
  function refreshTables(selector) {
    if (!document.querySelector(selector)) return;
    if (refreshing) { again = again && again !== selector ? "table[data-live]" : selector; return; }
    refreshing = true;
    fetch(location.pathname, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : ""))
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll(selector).forEach((table) => {
          const name = table.getAttribute("data-live");
          const body = fresh.querySelector('table[data-live="' + name + '"] tbody');
          if (!body || !table.tBodies[0]) return;
          localizeTimes(body);
          table.tBodies[0].replaceWith(document.importNode(body, true));
        });
      })
      .catch(() => {})
      .finally(() => {
        refreshing = false;
        if (again) { const next = again; again = null; refreshTables(next); }
      });
  }
  const refreshAreas = () => refreshTables('table[data-live="areas"]');

  // The activity charts are drawn by the server from its samples, taken each minute: fetch
  // the page again each minute (and after a reconnect) and take its charts.
  const CHARTS_EVERY = 60000;
  function refreshCharts() {
    const charts = document.querySelector('[data-live="activity"]');
    if (!charts) return;
    fetch(location.href, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : ""))
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html").querySelector('[data-live="activity"]');
        if (!fresh) return;
        const open = Array.from(charts.querySelectorAll("details"), (d) => d.open);
        fresh.querySelectorAll("details").forEach((d, i) => { d.open = Boolean(open[i]); });
        localizeTimes(fresh);
        charts.replaceWith(document.importNode(fresh, true));
      })
      .catch(() => {});
  }
  if (document.querySelector('[data-live="activity"]')) setInterval(refreshCharts, CHARTS_EVERY);

  function paintHeartbeat(iso) {
    document.querySelectorAll('[data-live="worker-seen"]').forEach((node) => {
      node.dataset.iso = iso;
      node.textContent = "last seen just now (" + new Date(iso).toLocaleTimeString() + ")";
    });
  }

  const handlers = {
    "household.changed": (m) => { paintLocal(m.local); paintPeers(m.peers); paintStrangers(m.strangers); },
    "appliance.heartbeat": (m) => paintHeartbeat(m.worker_seen_at),
    "consensus.run": (m) => { paintRun(m.run); refreshAreas(); },
    "areas.changed": () => refreshAreas(),
    "peers.connections": (m) => onConnections(m),
  };

  localizeTimes(document);
  paintConnections();

  let connected = false;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/dashboard/");
    socket.onopen = () => {
      delay = 1000; state.textContent = "live"; state.classList.add("live");
      if (connected) { refreshTables("table[data-live]"); refreshCharts(); }  // a reconnect: catch up
      connected = true;
    };
    socket.onmessage = (e) => {
      const message = JSON.parse(e.data);
      const handler = handlers[message.type];
      if (handler) handler(message);
      document.dispatchEvent(new CustomEvent("realize:event", { detail: message }));
    };
    socket.onclose = (e) => {
      state.textContent = "offline"; state.classList.remove("live");
      if (e.code === 4401) { location.reload(); return; }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
