// Auditor page: reads /api/trace with the token typed by the auditor (kept in sessionStorage,
// sent only in the Authorization header, never in a URL) and draws each delivery's stages.
"use strict";
(function () {
  const STAGES = ["fetch", "verify", "scan", "publish", "build", "push"];
  const KEY = "pipeline-audit-token";
  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function short(d) {
    if (!d) return "";
    const i = d.indexOf(":");
    return i > 0 && d.length > i + 17 ? d.slice(0, i + 17) + "…" : d;
  }
  function shortName(n) {
    return n.length > 34 ? "…" + n.slice(n.length - 33) : n;
  }
  function digests(list) {
    return (list || []).map((r) => {
      const ds = Object.entries(r.digest || {}).map(([a, v]) => a + ":" + v);
      return (r.name ? shortName(r.name) + " " : "") + ds.map(short).join(" ");
    });
  }
  function field(box, label, value, title) {
    if (value === undefined || value === null || value === "") return;
    const f = el("div", "field");
    f.appendChild(el("b", null, label + " "));
    const v = el("span", "mono", value);
    if (title) v.title = title;
    f.appendChild(v);
    box.appendChild(f);
  }
  function status(text, isError) {
    const s = $("status");
    s.textContent = text;
    s.className = isError ? "error" : "";
  }

  function stageBox(name, step) {
    const box = el("div", "stage");
    box.dataset.stage = name;
    const head = el("div", "name");
    head.appendChild(el("span", null, name));
    box.appendChild(head);
    if (!step) {
      box.classList.add("missing");
      box.dataset.verdict = "not-reached";
      head.appendChild(el("span", "verdict", "not run"));
      return box;
    }
    const r = step.record;
    box.classList.add(r.verdict === "passed" ? "passed" : "failed");
    if (!step.ok) box.classList.add("broken");
    box.dataset.verdict = r.verdict;
    box.dataset.ok = String(step.ok);
    head.appendChild(el("span", "verdict", r.verdict));
    const checks = el("div", "checks");
    const check = (label, ok) => {
      const c = el("span", "check " + (ok ? "ok" : "bad"), (ok ? "✓ " : "✗ ") + label);
      c.dataset.check = label;
      c.dataset.ok = String(ok);
      checks.appendChild(c);
    };
    check("signature", step.signatureValid);
    check("inclusion", step.includedInCheckpoint);
    check("links", (step.unlinkedMaterials || []).length === 0);
    box.appendChild(checks);
    field(box, "log #", r.logIndex);
    if (r.reasonCode) field(box, "reason", r.reasonCode + ": " + (r.reason || ""));
    // Who signed the supplier's tag and under which policy is decided at verify; the other stages repeat it.
    if (name === "verify" || !step.ok || !STAGES.includes(name)) {
      field(box, "signer", r.signer);
      field(box, "policy", short(r.policyDigest), r.policyDigest);
    }
    field(box, "engine key", r.keyId ? r.keyId.slice(0, 16) : "", r.keyId);
    for (const d of digests(r.materials)) field(box, "in", d);
    for (const d of digests(r.subjects)) field(box, "out", d);
    for (const p of step.problems || []) box.appendChild(el("div", "problem", p.code + ": " + p.message));
    return box;
  }

  function render(result) {
    const main = $("result");
    main.replaceChildren();
    const cp = $("checkpoint");
    cp.hidden = false;
    cp.replaceChildren();
    if (result.checkpoint) {
      cp.appendChild(el("span", "badge ok", "checkpoint signature OK"));
      cp.appendChild(document.createTextNode(" " + result.checkpoint.origin + " · size " + result.checkpoint.treeSize + " · root "));
      cp.appendChild(el("span", "mono", short("sha256:" + result.checkpoint.rootHex)));
      cp.appendChild(document.createTextNode(" · key " + result.checkpoint.keyId.slice(0, 16)));
    } else {
      cp.appendChild(el("span", "badge bad", "no verified checkpoint"));
    }
    for (const d of result.deliveries) {
      const failed = d.steps.find((s) => s.record.verdict !== "passed");
      const card = el("section", "delivery " + (d.ok ? "ok" : "broken") + (failed ? " rejected" : ""));
      card.dataset.delivery = d.deliveryId;
      const h = el("h2");
      h.appendChild(document.createTextNode((d.pipeline || "?") + " · " + (d.tag || "?") + " "));
      h.appendChild(el("span", "badge " + (failed ? "bad" : "ok"), failed ? "rejected at " + failed.record.stage : "all stages passed"));
      h.appendChild(document.createTextNode(" "));
      h.appendChild(el("span", "badge " + (d.ok ? "ok" : "bad"), d.ok ? "chain verified" : "chain broken"));
      card.appendChild(h);
      card.appendChild(el("div", "meta", "supplier " + (d.supplier || "?") + " · delivery " + d.deliveryId));
      const chain = el("div", "chain");
      const byStage = new Map();
      for (const s of d.steps) byStage.set(s.record.stage, s);
      STAGES.forEach((n, i) => {
        if (i > 0) chain.appendChild(el("span", "arrow", "→"));
        chain.appendChild(stageBox(n, byStage.get(n)));
      });
      card.appendChild(chain);
      // After the push: the lifecycle (requests, Freigaben with who gave them, promotions, Rücknahme),
      // in log order, on to Produktion. Each box is a signed statement checked like the ones above.
      const later = d.steps.filter((s) => !STAGES.includes(s.record.stage));
      if (later.length > 0) {
        card.appendChild(el("div", "lane", "after the push: stages and Freigaben"));
        const lane = el("div", "chain lifecycle");
        later.forEach((s, i) => {
          if (i > 0) lane.appendChild(el("span", "arrow", "→"));
          const box = stageBox(s.record.stage, s);
          box.classList.add("step");
          lane.appendChild(box);
        });
        card.appendChild(lane);
      }
      main.appendChild(card);
    }
    document.body.dataset.rendered = "true";
  }

  async function trace(ev) {
    if (ev) ev.preventDefault();
    const token = $("token").value.trim();
    const q = $("query").value.trim();
    if (!token) return status("Type your auditor token first.", true);
    if (!q) return status("Type an image digest, delivery id or tag.", true);
    sessionStorage.setItem(KEY, token);
    status("Tracing " + q + " …");
    delete document.body.dataset.rendered;
    try {
      const res = await fetch("/api/trace/" + encodeURIComponent(q), {
        headers: { Authorization: "Bearer " + token, Accept: "application/json" },
        cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) {
        $("result").replaceChildren();
        $("checkpoint").hidden = true;
        document.body.dataset.rendered = "error";
        return status((body.code || res.status) + ": " + (body.message || res.statusText), true);
      }
      render(body);
      const n = body.deliveries.length;
      status(n + " deliver" + (n === 1 ? "y" : "ies") + " · " + (body.ok ? "every link verified" : "PROBLEMS FOUND: see the red boxes"), !body.ok);
    } catch (e) {
      document.body.dataset.rendered = "error";
      status("Request failed: " + e.message, true);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token").value = sessionStorage.getItem(KEY) || "";
    $("search").addEventListener("submit", trace);
    $("forget").addEventListener("click", () => { sessionStorage.removeItem(KEY); $("token").value = ""; status("Token forgotten."); });
  });
})();
