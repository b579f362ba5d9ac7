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
        const cells = [el("td", {}, [p.name]), el("td", {}, [el("code", {}, [p.peer_id])]), el("td", {}, [address])];
        if (removeUrl) cells.push(el("td", {}, [removeForm(removeUrl, p.name)]));
        body.append(el("tr", { "data-peer": p.name }, cells));
      });
    });
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

  function paintHeartbeat(iso) {
    document.querySelectorAll('[data-live="worker-seen"]').forEach((node) => {
      node.dataset.iso = iso;
      node.textContent = "last seen just now (" + new Date(iso).toLocaleTimeString() + ")";
    });
  }

  const handlers = {
    "household.changed": (m) => { paintLocal(m.local); paintPeers(m.peers); },
    "appliance.heartbeat": (m) => paintHeartbeat(m.worker_seen_at),
  };

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/dashboard/");
    socket.onopen = () => { delay = 1000; state.textContent = "live"; state.classList.add("live"); };
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
