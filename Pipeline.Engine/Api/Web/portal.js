// Portal page: the board and the Freigaben waiting for the signed-in person. The personal token is
// kept in sessionStorage (this tab only) and sent only in the Authorization header, never in a URL
// or cookie; every action is a same-origin POST with a JSON body (see PortalCsrf on the server).
"use strict";
(function () {
  const KEY = "pipeline-portal-token";
  const $ = (id) => document.getElementById(id);
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function status(text, isError) {
    const s = $("status");
    s.textContent = text;
    s.className = isError ? "error" : "";
  }
  async function api(method, path, body) {
    const token = sessionStorage.getItem(KEY) || "";
    const init = {
      method, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
      headers: { Authorization: "Bearer " + token, Accept: "application/json" },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch("/api/portal" + path, init);
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((data.code || res.status) + ": " + (data.message || res.statusText));
    return data;
  }

  function pendingCard(p) {
    const d = p.delivery;
    const card = el("div", "card");
    card.dataset.delivery = d.deliveryId;
    card.dataset.stage = p.stage.name;
    card.appendChild(el("h3", null, d.pipeline + " " + d.tag + ": " + d.stage + " ► " + p.stage.name));
    const dl = el("dl");
    const row = (k, v, cls) => {
      if (v === undefined || v === null || v === "") return;
      dl.appendChild(el("dt", null, k));
      const dd = el("dd", cls || "mono", v);
      dd.dataset.field = k;
      dl.appendChild(dd);
    };
    row("digests", d.digests.join("\n"));
    row("images", d.images.join("\n"));
    row("stage result", d.result.stage + " " + d.result.result + " · " + d.result.digest);
    row("scan", (p.evidence.scanVerdict || "?") + (p.evidence.scanDetail ? " · " + p.evidence.scanDetail : ""), "");
    row("signer", (p.evidence.signer || "?") + (p.evidence.signerKey ? " · " + p.evidence.signerKey : ""), "");
    row("SBOM", (p.evidence.sboms || []).join("\n"));
    row("rule", p.stage.rule, "");
    row("requested by", p.request.requestedBy + " · " + p.request.requestedAt, "");
    row("approved by", p.counted.map((a) => a.approver).join(", ") + " (" + p.missing + " more needed)", "");
    card.appendChild(dl);
    if (!p.mayApprove) {
      card.appendChild(el("div", "whynot", "You cannot approve this: " + (p.whyNot || "")));
      return card;
    }
    const comment = el("textarea");
    comment.placeholder = "comment (required for a refusal)";
    comment.className = "comment";
    card.appendChild(comment);
    const actions = el("div", "actions");
    const decide = async (what) => {
      status((what === "approve" ? "Approving " : "Refusing ") + d.tag + " into " + p.stage.name + " …");
      try {
        const r = await api("POST", "/deliveries/" + d.deliveryId + "/" + what,
          { stage: p.stage.name, digests: d.digests, comment: comment.value.trim() || null });
        status(what === "approve"
          ? (r.ruleComplete ? (r.promotionError ? "Approved; the promotion failed and resumes: " + r.promotionError : "Approved: " + d.tag + " is in " + r.delivery.stage + ".")
            : "Approved; " + r.missing + " more Freigabe(n) needed.")
          : "Refused: " + d.tag + " goes no further.", !!r.promotionError);
        await refresh(false);
      } catch (e) {
        status(e.message, true);
      }
    };
    const approve = el("button", "approve", "Approve");
    approve.type = "button";
    approve.addEventListener("click", () => decide("approve"));
    const reject = el("button", "reject", "Reject");
    reject.type = "button";
    reject.addEventListener("click", () => decide("reject"));
    actions.append(approve, reject);
    card.appendChild(actions);
    return card;
  }

  function boardTable(bp) {
    const box = el("div", "pipeline");
    box.dataset.pipeline = bp.pipeline;
    const h = el("h3", null, bp.pipeline + " ");
    const run = el("button", "quiet small", "Transfer now");
    run.type = "button";
    run.addEventListener("click", async () => {
      try {
        const r = await api("POST", "/pipelines/" + encodeURIComponent(bp.pipeline) + "/run", {});
        status("Pass " + r.id + " of " + bp.pipeline + " started.");
      } catch (e) {
        status(e.message, true);
      }
    });
    h.appendChild(run);
    box.appendChild(h);
    const t = el("table", "board");
    const head = el("tr");
    ["version", "intake"].concat(bp.stages.map((s) => s.name)).forEach((n) => head.appendChild(el("th", null, n)));
    head.appendChild(el("th", null, "waits for"));
    t.appendChild(head);
    for (const e of bp.deliveries) {
      const d = e.delivery;
      const tr = el("tr");
      tr.dataset.delivery = d.deliveryId;
      tr.dataset.stage = d.stage;
      tr.dataset.state = d.state;
      tr.appendChild(el("td", "mono", d.tag));
      ["intake"].concat(bp.stages.map((s) => s.name)).forEach((n) => {
        const td = el("td");
        if (n === d.stage) {
          const closed = ["rejected", "withdrawn", "superseded"].includes(d.state);
          td.className = closed ? "closed" : "here";
          td.textContent = closed ? d.state : "● " + (d.state === "final" ? "final" : "here");
        } else if (n === d.targetStage) {
          td.className = "target";
          td.textContent = d.state.replace(/_/g, " ");
        }
        tr.appendChild(td);
      });
      tr.appendChild(el("td", "waiting", e.waitingFor || d.reason || ""));
      t.appendChild(tr);
    }
    box.appendChild(t);
    return box;
  }

  async function refresh(announce) {
    delete document.body.dataset.rendered;
    try {
      const [pending, board] = await Promise.all([api("GET", "/approvals"), api("GET", "/board")]);
      const pbox = $("pending");
      pbox.replaceChildren(...pending.map(pendingCard));
      if (pending.length === 0) pbox.appendChild(el("div", "waiting", "Nothing waits for a Freigabe."));
      $("pending-section").hidden = false;
      $("board").replaceChildren(...board.pipelines.map(boardTable));
      $("board-section").hidden = false;
      document.body.dataset.rendered = "true";
      if (announce) status(pending.filter((p) => p.mayApprove).length + " Freigabe(n) wait for you.");
    } catch (e) {
      document.body.dataset.rendered = "error";
      status(e.message, true);
    }
  }

  async function signin(ev) {
    if (ev) ev.preventDefault();
    const token = $("token").value.trim();
    if (!token) return status("Type your personal token first.", true);
    sessionStorage.setItem(KEY, token);
    try {
      const me = await api("GET", "/me");
      $("me").textContent = me.name + " · " + me.roles.join(", ") + (me.tenants.length ? " · " + me.tenants.join(", ") : "");
    } catch (e) {
      document.body.dataset.rendered = "error";
      $("pending-section").hidden = true;
      $("board-section").hidden = true;
      return status(e.message, true);
    }
    await refresh(true);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token").value = sessionStorage.getItem(KEY) || "";
    $("login").addEventListener("submit", signin);
    $("forget").addEventListener("click", () => { sessionStorage.removeItem(KEY); $("token").value = ""; $("me").textContent = ""; status("Token forgotten."); });
  });
})();
