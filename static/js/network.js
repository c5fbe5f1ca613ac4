// The network page: tabs, keyboard, copy, and the topology (Cytoscape.js).
// Everything the server says is put in the page as text (textContent), never as HTML. Positions and
// verdicts come from the server; nothing here decides what is allowed.
(() => {
  "use strict";

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const TABS = ["ingress", "egress", "topology", "applied", "policy"];

  // ------------------------------------------------------------------------------------------- tabs

  function currentTab() {
    const tab = new URL(window.location.href).searchParams.get("tab");
    return TABS.includes(tab) ? tab : ($("#workload") ? $("#workload").dataset.tab : "egress");
  }

  function showTab(name, push) {
    for (const tab of TABS) {
      const panel = $(`#panel-${tab}`);
      if (panel) panel.hidden = tab !== name;
      const link = $(`#tab-${tab}`);
      if (link) link.setAttribute("aria-selected", String(tab === name));
    }
    // Forms post the tab they are on, so that what comes back shows it.
    $$('input[data-state="tab"], #scopebar input[name="tab"]').forEach((input) => { input.value = name; });
    if (push) {
      const url = new URL(window.location.href);
      url.searchParams.set("tab", name);
      window.history.replaceState(window.history.state, "", url);
    }
    if (name === "topology") buildGraph();
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-tab]");
    if (link && !event.metaKey && !event.ctrlKey && $(`#panel-${link.dataset.tab}`)) {
      event.preventDefault();
      showTab(link.dataset.tab, true);
    }
    const copy = event.target.closest("[data-copy]");
    if (copy) {
      navigator.clipboard.writeText($(copy.dataset.copy).textContent).then(() => {
        copy.textContent = "Copied";
        window.setTimeout(() => { copy.textContent = "Copy"; }, 1500);
      });
    }
    if (event.target.closest("[data-fit]") && graph) graph.fit(undefined, 30);
  });

  // Space on a focused row toggles its checkbox, as on the checkbox itself.
  document.addEventListener("keydown", (event) => {
    if (event.key === " " && event.target.matches && event.target.matches("tr[data-key]")) {
      const box = $('input[type="checkbox"]:not([disabled])', event.target);
      if (box) {
        event.preventDefault();
        box.click();
      }
    }
    if (event.key === "Escape") unpin();
  });

  function markPartial() {
    $$("input[data-indeterminate]").forEach((box) => { box.indeterminate = true; });
  }

  // ------------------------------------------------------------------------------------------ graph

  let graph = null;
  let pinned = null;

  const STYLE = [
    { selector: "node", style: {
      "label": "data(display)", "text-wrap": "wrap", "text-valign": "center", "text-halign": "center",
      "font-size": 11, "font-family": "system-ui, sans-serif", "color": "#fff", "background-color": "#111827",
      "shape": "round-rectangle", "width": 150, "height": 38, "text-max-width": 140, "line-height": 1.2 } },
    { selector: "node.scope", style: {
      "background-color": "#1d4ed8", "border-color": "#1e3a8a", "border-width": 4, "border-style": "double",
      "width": 190, "height": 50, "font-size": 13, "font-weight": 700 } },
    { selector: "node.hollow", style: { "background-color": "#fff", "color": "#111827", "border-width": 1.5, "border-color": "#111827" } },
    { selector: "node.box", style: {
      "label": "data(label)", "text-valign": "top", "text-halign": "center", "text-margin-y": -4, "color": "#6b7280",
      "font-size": 11, "text-transform": "uppercase", "background-color": "#f8fafc", "border-color": "#e5e7eb",
      "border-width": 1, "shape": "round-rectangle", "padding": 18 } },
    { selector: "node.box.outside", style: { "border-style": "dashed" } },
    { selector: "node.box.warn", style: { "background-color": "#fffbeb", "border-color": "#fcd34d", "color": "#b45309" } },
    { selector: "edge", style: {
      "width": 1.5, "curve-style": "bezier", "line-color": "#111827", "target-arrow-color": "#111827",
      "target-arrow-shape": "triangle", "label": "data(label)", "font-size": 10, "color": "#374151",
      "text-background-color": "#fff", "text-background-opacity": 1, "text-background-padding": 2 } },
    { selector: "edge.blocked", style: {
      "line-color": "#dc2626", "target-arrow-color": "#dc2626", "line-style": "dashed", "target-arrow-shape": "tee",
      "color": "#dc2626" } },
    { selector: ":selected", style: { "overlay-color": "#60a5fa", "overlay-opacity": 0.2 } },
  ];

  function readData() {
    const script = $("#topology-data");
    return script ? JSON.parse(script.textContent) : null;
  }

  function buildGraph() {
    const container = $("#cy");
    const data = readData();
    if (!container || !data || container.offsetParent === null || typeof window.cytoscape !== "function") return;
    const view = graph ? { zoom: graph.zoom(), pan: graph.pan() } : null;
    destroyGraph();
    for (const node of data.nodes) {
      node.data.display = node.data.sublabel ? `${node.data.label}\n${node.data.sublabel}` : node.data.label;
    }
    graph = window.cytoscape({
      container, elements: { nodes: data.nodes, edges: data.edges }, style: STYLE,
      layout: { name: "preset", fit: !view, padding: 30 }, autoungrabify: true, boxSelectionEnabled: false,
      minZoom: 0.15, maxZoom: 3,
    });
    if (view) {
      graph.zoom(view.zoom);
      graph.pan(view.pan);
    }
    graph.on("mouseover", "node, edge", (event) => { if (!pinned) showPane(event.target); });
    graph.on("mouseout", "node, edge", () => { if (!pinned) hidePane(); });
    graph.on("tap", "node, edge", (event) => { pinned = event.target.id(); showPane(event.target); });
    graph.on("tap", (event) => { if (event.target === graph) unpin(); });
  }

  function destroyGraph() {
    if (graph) {
      graph.destroy();
      graph = null;
    }
  }

  function unpin() {
    pinned = null;
    hidePane();
  }

  function hidePane() {
    const pane = $("#pane");
    if (pane) pane.hidden = true;
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function facts(pane, pairs) {
    const list = el("dl");
    for (const [term, value] of pairs) {
      if (value === undefined || value === null || value === "" || (Array.isArray(value) && !value.length)) continue;
      list.append(el("dt", term), el("dd", Array.isArray(value) ? value.join(", ") : value));
    }
    pane.append(list);
  }

  function showPane(target) {
    const pane = $("#pane");
    if (!pane || target.data("box")) return;
    pane.replaceChildren();
    if (pinned) pane.append(el("span", "pinned · Esc", "pin"));
    const data = target.data();
    if (target.isNode()) {
      pane.append(el("h3", data.label));
      const labels = Object.entries(data.labels || {}).map(([k, v]) => `${k}=${v}`);
      const addresses = (data.addresses || []).concat(data.more_addresses ? [`and ${data.more_addresses} more`] : []);
      facts(pane, [["kind", data.kind], ["namespace", data.namespace], ["labels", labels], ["ports", data.ports],
                   ["services", data.services], ["service", data.service], ["ranges", data.cidrs], ["addresses", addresses],
                   ["connections", data.connections], ["folded", data.peers]]);
    } else {
      const peer = target.source().id() === "scope" ? target.target() : target.source();
      const scope = graph.getElementById("scope").data("label");
      pane.append(el("h3", data.direction === "egress" ? `${scope} → ${peer.data("label")}` : `${peer.data("label")} → ${scope}`));
      pane.append(el("p", data.allowed ? "✓ Allowed" : "✕ Blocked", data.allowed ? "verdict-allowed" : "verdict-blocked"));
      facts(pane, [["ports", data.label], ["connections", data.connections], ["last seen", data.last_seen.replace("T", " ").slice(0, 16)]]);
      const list = el("ul");
      for (const row of data.rows) {
        let why;
        if (row.always_allowed) why = "always allowed: the pod's own node";
        else if (row.warning) why = row.warning;
        else if (row.blocked_by.length) {
          why = row.blocked_by.map((side) => `${side} side`).join(" and ") + " blocks"
            + (row.policies.length ? ` (${row.policies.join(", ")})` : "") + (row.included ? "" : "; the draft leaves it out");
        } else why = row.policies.length ? `allowed by ${row.policies.join(", ")}` : "no policy isolates either side";
        list.append(el("li", `${row.port}: ${row.connections} connections — ${why}${row.denied_in_cluster ? " · denied in cluster" : ""}`));
      }
      pane.append(list);
      const form = $("#allow-edge");
      if (!data.allowed && data.keys.length && form) {
        const button = el("button", "Allow", "primary");
        button.type = "button";
        button.addEventListener("click", () => allow(data.keys));
        pane.append(button);
      }
    }
    pane.hidden = false;
  }

  function allow(keys) {
    // The same change as ticking the rows: the server answers with every part of the page it changes.
    const form = $("#allow-edge");
    $$('input[name="key"]', form).forEach((input) => input.remove());
    for (const key of keys) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = "key";
      input.value = key;
      form.append(input);
    }
    unpin();
    window.htmx.trigger(form, "submit");
  }

  // Cytoscape goes before its data is swapped and comes back after: positions are the server's, so the
  // graph does not move; the view (zoom, pan) is kept.
  document.addEventListener("htmx:oobBeforeSwap", (event) => {
    if (event.detail.target && event.detail.target.id === "topology-box" && graph) {
      pendingView = { zoom: graph.zoom(), pan: graph.pan() };
      destroyGraph();
    }
  });
  let pendingView = null;
  document.addEventListener("htmx:afterSettle", () => {
    markPartial();
    showTab(currentTab(), false);
    if (pendingView && graph) {
      graph.zoom(pendingView.zoom);
      graph.pan(pendingView.pan);
    }
    pendingView = null;
  });
  document.addEventListener("DOMContentLoaded", () => {
    markPartial();
    showTab(currentTab(), false);
  });
})();
