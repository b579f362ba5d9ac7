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

  function paintPeers(peers) {
    document.querySelectorAll('table[data-live="peers"]').forEach((table) => {
      const peerUrl = table.dataset.peerUrl;
      const body = table.tBodies[0];
      body.replaceChildren();
      if (!peers.length) {
        body.append(el("tr", { class: "empty" }, [el("td", { colspan: "5", class: "muted" }, ["No peers yet."])]));
      }
      peers.forEach((p) => {
        const address = p.address ? p.address : el("span", { class: "muted" }, ["deaf"]);
        const link = el("a", { href: peerUrl.replace("/NAME/", "/" + encodeURIComponent(p.name) + "/") }, [p.name]);
        const cells = [el("td", {}, [link]), el("td", {}, [el("code", {}, [p.peer_id])]), el("td", {}, [address]),
          el("td", { "data-conn": "" }), el("td", { class: "num", "data-traffic": "" })];
        const attrs = { "data-peer": p.name };
        if (p.paused) attrs["data-paused"] = "";
        body.append(el("tr", attrs, cells));
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
    document.querySelectorAll("table.peers tr[data-peer]").forEach((row) => {
      const name = row.dataset.peer, state = connections[name] || {}, moved = traffic[name];
      const conn = row.querySelector("[data-conn]"), bytesCell = row.querySelector("[data-traffic]");
      if (conn) {
        if (row.hasAttribute("data-paused")) {
          conn.replaceChildren(el("span", { class: "status" }, ["paused"]));
        } else if (state.since) {
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

  function duration(seconds) {
    if (seconds < 90) return seconds + " s";
    if (seconds < 90 * 60) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  // As areas.events.progress_text.
  function progressText(run) {
    const p = run.progress, parts = [run.files_in + " of " + run.files_total + " files"];
    if (run.bytes_total) parts.push(bytes(run.bytes_in) + " of " + bytes(run.bytes_total));
    if (p.rate) parts.push(bytes(Math.round(p.rate)) + "/s");
    if (p.seconds_left !== null) parts.push(duration(p.seconds_left) + " left");
    return parts.join(", ");
  }

  // An area's state as a run going on changes it; its end is fetched from the page.
  function paintAreaState(run) {
    if (run.status !== "running") return;
    document.querySelectorAll('[data-area-state="' + CSS.escape(run.area) + '"]').forEach((node) => {
      const label = node.querySelector("[data-state-label]"), detail = node.querySelector("[data-state-detail]");
      const bar = node.querySelector("progress");
      if (label) label.textContent = "Syncing" + (run.progress ? " " + run.progress.percent + "%" : "");
      if (detail) detail.textContent = run.progress ? progressText(run) : "with " + run.peer;
      if (bar && run.progress) { bar.hidden = false; bar.value = run.progress.percent; }
    });
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
    } else if (run.progress) {
      cells.push(el("td", { colspan: "3", class: "nowrap", "data-progress": "" }, [run.progress.percent + "%: " + progressText(run)]));
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
  const refreshAreas = () => refreshTables('table[data-live="areas"], table[data-live="area-state"]');

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
      node.replaceChildren("last seen just now (", timeNode(iso), ")");
    });
  }

  const handlers = {
    "household.changed": (m) => { paintLocal(m.local); paintPeers(m.peers); paintStrangers(m.strangers); },
    "appliance.heartbeat": (m) => paintHeartbeat(m.worker_seen_at),
    "consensus.run": (m) => {
      paintAreaState(m.run);
      if (m.run.status === "running" && m.run.progress) { paintRun(m.run); return; }  // each second
      paintRun(m.run);
      // An ended run may fold into the idle ones before it: the server says how.
      refreshTables(m.run.finished_at ? 'table[data-live="areas"], table[data-live="area-state"], table[data-live="runs"]' :
        'table[data-live="areas"], table[data-live="area-state"]');
    },
    "areas.changed": () => refreshAreas(),
    "areas.history": (m) => {
      if (document.querySelector('table[data-live="changes"][data-area="' + CSS.escape(m.area) + '"]')) {
        refreshTables('table[data-live="changes"]');
      }
    },
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
