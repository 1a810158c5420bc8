// The operator's page: polls /dashboard/stats every second (only the samples
// after the last one it has, ?since=<ms>), keeps the server's history
// length of samples and draws them with uPlot. Everything it loads comes
// from this server.
"use strict";
(function () {
  const statsURL = "/dashboard/stats";
  let intervalMs = 1000;
  let historySamples = 300;
  let lastMs = -1; // the newest sample held, Unix ms
  let polls = 0;
  const cols = {}; // series name -> array, aligned with cols.t
  const charts = [];

  // Each chart: its series (JSON column, label, colour, y scale).
  const chartDefs = [
    { el: "chart-throughput", series: [
      ["holds", "holds", "#1c7ed6"], ["orders", "orders", "#2f9e44"],
      ["paid", "paid", "#7048e8"], ["webhooks", "webhooks", "#e8590c"]] },
    { el: "chart-refusals", series: [
      ["refused_conflict", "409 conflict / sold out", "#f59f00"], ["refused_busy", "429/503 busy", "#c92a2a"],
      ["refused_client", "other 4xx", "#868e96"], ["errors", "5xx", "#000000"]] },
    { el: "chart-latency", series: [
      ["p50_ms_holds", "hold p50", "#74c0fc"], ["p99_ms_holds", "hold p99", "#1c7ed6"],
      ["p99_ms_orders", "order p99", "#2f9e44"], ["p99_ms_webhook", "webhook p99", "#e8590c"],
      ["p99_ms_product", "product read p99", "#7048e8"]] },
    { el: "chart-log", log: true, series: [
      ["wal_batch_records", "records / batch", "#1c7ed6", "y"],
      ["fsync_p50_ms", "fsync p50 ms", "#ffa94d", "ms"], ["fsync_p99_ms", "fsync p99 ms", "#e8590c", "ms"]] },
  ];
  const clusterLogSeries = [
    ["raft_proposals_per_fsync", "proposals / fsync", "#1c7ed6", "y"],
    ["fsync_p50_ms", "fsync p50 ms", "#ffa94d", "ms"], ["fsync_p99_ms", "fsync p99 ms", "#e8590c", "ms"]];

  const $ = (id) => document.getElementById(id);

  function fmt(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (digits === undefined) digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
    return v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  }

  // last is the newest non-null value of column name.
  function last(name) {
    const a = cols[name];
    if (!a) return null;
    for (let i = a.length - 1; i >= 0 && i >= a.length - 3; i--) if (a[i] !== null) return a[i];
    return null;
  }

  function chartWidth(el) {
    return Math.max(300, el.parentElement.clientWidth - 16);
  }

  function makeCharts(clusterMode) {
    for (const def of chartDefs) {
      const series = def.log && clusterMode ? clusterLogSeries : def.series;
      if (def.log && clusterMode) $("chart-log-title").textContent = "Raft log: proposals per fsync (left), fsync ms (right)";
      const el = $(def.el);
      const twoScales = series.some((s) => s[3] === "ms");
      const opts = {
        width: chartWidth(el), height: 200,
        scales: { x: { time: true } },
        legend: { live: true },
        series: [{}].concat(series.map((s) => ({
          label: s[1], stroke: s[2], width: 1.5, scale: s[3] || "y", spanGaps: false,
          value: (u, v) => fmt(v),
        }))),
        axes: [{}, { scale: "y" }].concat(twoScales ? [{ scale: "ms", side: 1, grid: { show: false } }] : []),
      };
      const u = new uPlot(opts, [[]].concat(series.map(() => [])), el);
      charts.push({ u, el, names: series.map((s) => s[0]) });
    }
    window.addEventListener("resize", () => {
      for (const c of charts) c.u.setSize({ width: chartWidth(c.el), height: 200 });
    });
  }

  // addSeries appends the server's new samples and drops those beyond the
  // history length.
  function addSeries(series) {
    const t = series.t || [];
    if (t.length === 0) return;
    const n0 = cols.t ? cols.t.length : 0;
    for (const name of new Set([...Object.keys(cols), ...Object.keys(series)])) {
      const held = cols[name] || new Array(n0).fill(null);
      cols[name] = held.concat(series[name] || new Array(t.length).fill(null));
    }
    const drop = cols.t.length - historySamples;
    if (drop > 0) for (const name of Object.keys(cols)) cols[name] = cols[name].slice(drop);
    lastMs = Math.round(t[t.length - 1] * 1000);
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function renderProducts(s) {
    const tbody = $("products").tBodies[0];
    const rows = [];
    for (const p of s.products) {
      const tr = document.createElement("tr");
      tr.dataset.product = p.id;
      cell(tr, String(p.id));
      cell(tr, p.name);
      for (const f of ["total_stock", "available_stock", "reserved_stock", "sold_stock"]) {
        const td = cell(tr, p[f].toLocaleString("en-US"), "num");
        td.dataset.product = p.id;
        td.dataset.field = f;
        td.dataset.value = p[f];
      }
      const bar = document.createElement("div");
      bar.className = "bar";
      for (const [f, c] of [["sold_stock", "sold"], ["reserved_stock", "reserved"], ["available_stock", "available"]]) {
        const span = document.createElement("span");
        span.className = c;
        span.style.width = (p.total_stock > 0 ? (100 * p[f]) / p.total_stock : 0) + "%";
        bar.appendChild(span);
      }
      cell(tr, "").appendChild(bar);
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
    $("stale").hidden = !s.products_stale;
    const t = s.totals;
    $("totals").textContent = `since start: ${t.holds_created.toLocaleString("en-US")} holds (${t.holds_expired.toLocaleString("en-US")} expired), ` +
      `${t.orders_created.toLocaleString("en-US")} orders (${t.orders_paid.toLocaleString("en-US")} paid, ${t.orders_pending.toLocaleString("en-US")} pending, ` +
      `${t.orders_cancelled.toLocaleString("en-US")} cancelled, ${t.orders_timed_out.toLocaleString("en-US")} timed out), ` +
      `${t.webhooks.toLocaleString("en-US")} webhooks, ${t.refunds_needed.toLocaleString("en-US")} refunds needed`;
  }

  function renderCluster(c) {
    $("cluster").hidden = !c;
    if (!c) return;
    const prow = [];
    for (const p of c.partitions) {
      const tr = document.createElement("tr");
      cell(tr, String(p.id));
      cell(tr, p.leader === 0 ? "none" : p.leader === c.node_id ? `node ${p.leader} (this node)` : `node ${p.leader}`, p.leader === 0 ? "warn" : "");
      cell(tr, String(p.term), "num");
      cell(tr, String(p.commit_index), "num");
      cell(tr, String(p.applied_index), "num");
      cell(tr, String(p.commit_index - p.applied_index), "num");
      prow.push(tr);
    }
    $("partitions").tBodies[0].replaceChildren(...prow);
    const nrow = [];
    for (const n of c.nodes) {
      const tr = document.createElement("tr");
      cell(tr, n.id === c.node_id ? `${n.id} (this node)` : String(n.id));
      cell(tr, n.http);
      cell(tr, n.raft);
      cell(tr, n.reachable ? "yes" : "no", n.reachable ? "" : "warn");
      nrow.push(tr);
    }
    $("nodes").tBodies[0].replaceChildren(...nrow);
  }

  function renderTiles(s) {
    $("tile-holds").textContent = fmt(last("holds"));
    $("tile-orders").textContent = fmt(last("orders"));
    $("tile-paid").textContent = fmt(last("paid"));
    const parts = ["refused_conflict", "refused_busy", "refused_client", "errors"].map(last);
    $("tile-refused").textContent = parts.every((v) => v === null) ? "–" : fmt(parts.reduce((a, v) => a + (v || 0), 0));
    $("tile-latency").textContent = `${fmt(last("p50_ms_holds"))} / ${fmt(last("p99_ms_holds"))}`;
    if (s.mode === "cluster") {
      $("tile-log-label").textContent = "Raft proposals / fsync";
      $("tile-batch").textContent = fmt(last("raft_proposals_per_fsync"));
    } else {
      $("tile-batch").textContent = fmt(last("wal_batch_records"));
    }
    $("tile-fsync").textContent = `${fmt(last("fsync_p50_ms"))} / ${fmt(last("fsync_p99_ms"))}`;
    $("tile-fsyncs").textContent = fmt(last("fsyncs"));
    $("tile-queued").textContent = s.totals.webhooks_queued.toLocaleString("en-US");
  }

  function render(s) {
    intervalMs = s.sample_interval_ms;
    historySamples = s.history_samples;
    if (charts.length === 0) makeCharts(s.mode === "cluster");
    $("mode").textContent = s.mode === "cluster" ? `cluster node ${s.node_id}` : "single node";
    if (lastMs >= 0 && s.now_ms + historySamples * intervalMs < lastMs) {
      // The server's clock went back (or another server answers): start
      // over, the next poll fetches its whole history.
      for (const name of Object.keys(cols)) delete cols[name];
      lastMs = -1;
    }
    addSeries(s.series);
    $("nohistory").hidden = (cols.t || []).length > 0;
    for (const c of charts) c.u.setData([cols.t || []].concat(c.names.map((n) => cols[n] || [])));
    renderTiles(s);
    renderProducts(s);
    renderCluster(s.cluster);
    $("updated").textContent = "updated " + new Date(s.now_ms).toLocaleTimeString("en-GB");
    polls++;
    document.body.dataset.polls = polls;
    document.body.dataset.nowMs = s.now_ms;
  }

  function setStatus(ok, text) {
    const el = $("status");
    el.textContent = text;
    el.className = "tag " + (ok ? "ok" : "bad");
  }

  // poll fetches the new figures; a network failure or an error answer
  // shows "disconnected" and is retried. An exception while rendering is
  // not caught: a bug of the page must be loud.
  async function poll() {
    let s;
    try {
      const r = await fetch(lastMs < 0 ? statsURL : `${statsURL}?since=${lastMs}`, { cache: "no-store" });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      s = await r.json();
    } catch (e) {
      setStatus(false, "disconnected: " + e.message);
      setTimeout(poll, intervalMs);
      return;
    }
    setTimeout(poll, intervalMs);
    setStatus(true, "live");
    render(s);
  }

  poll();
})();
