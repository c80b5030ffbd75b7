// Before the irreversible click: Send proof (a dialog asking who receives it), the delivery's
// proofs, and a preview pane showing the message exactly as one profile would receive it.
// The preview's HTML is made inert before it is shown: no link can be followed and no image
// loaded, so looking at it records no click and no open.

const PROOF = "number sentAt sentBy accepted recipients { address profileId outcome detail }";
export const PROOF_QUERIES = {
  proofs: `query($id: ID!) { delivery(id: $id) { id proofs { ${PROOF} } } }`,
  sendProof: `mutation($id: ID!, $input: SendProofInput!) {
    sendProof(deliveryId: $id, input: $input) { ${PROOF} } }`,
  preview: `query($id: ID!, $profileId: ID!) {
    previewDelivery(id: $id, profileId: $profileId) { subject html text } }`,
};
// Elements that load or run something: dropped from the preview.
const ACTIVE = "script, iframe, frame, object, embed, link, base, meta, form, audio, video, source";

const split = (text) => text.split(/[\s,;]+/).map((part) => part.trim()).filter(Boolean);

/** The message's HTML, with nothing in it that reaches out: links keep their text and show
 *  their target as a tooltip, images keep their alt text, and a policy of its own forbids
 *  any load that was missed. */
export function inert(html) {
  const doc = new DOMParser().parseFromString(html, "text/html"); // parsing loads nothing
  for (const node of doc.querySelectorAll(ACTIVE)) node.remove();
  for (const a of doc.querySelectorAll("a[href]")) {
    a.title = `link to ${a.getAttribute("href")} (not followed in the preview)`;
    a.removeAttribute("href");
  }
  for (const img of doc.querySelectorAll("img")) {
    img.removeAttribute("src");
    img.removeAttribute("srcset");
  }
  for (const node of doc.querySelectorAll("[background]")) node.removeAttribute("background");
  const policy = doc.createElement("meta");
  policy.httpEquiv = "Content-Security-Policy";
  policy.content = "default-src 'none'";
  doc.head.prepend(policy);
  return `<!doctype html>${doc.documentElement.outerHTML}`;
}

/**
 * The proof and preview parts of the Deployment block. `page` gives what they share with the
 * rest of it: $, show, message, when, call (the signed-in GraphQL call), current() (the open
 * delivery or null) and allowed(action) (whether the operator may do it now).
 */
export function proofsPart(page) {
  const { $, show, message, when, call } = page;

  function render(status) {
    const button = $("send-proof");
    show(button, page.mayProof());
    button.disabled = !page.allowed("SEND_PROOF");
    button.title = button.disabled
      ? `A proof is sent from a READY email delivery (this one is ${status}).`
      : "Mail this delivery to reviewers before confirming it";
  }

  /** A delivery was opened: preview its first recipient unless the operator picks another. */
  function open(delivery) {
    const ids = delivery.audience ? delivery.audience.profileIds : [];
    $("preview-profile").value = ids.length ? ids[0] : "";
  }

  function reset() {
    show($("preview-panel"), false);
    $("preview-toggle").setAttribute("aria-expanded", "false");
    show($("preview-result"), false);
    message($("preview-error"), "");
    message($("proofs-error"), "");
    $("proofs-list").replaceChildren();
    $("proofs-count").textContent = "";
    $("preview-html").removeAttribute("srcdoc"); // no one's copy stays in the page
  }

  async function loadProofs() {
    const current = page.current();
    if (!current) return;
    try {
      const d = (await call(PROOF_QUERIES.proofs, { id: current.id })).delivery;
      if (page.current() !== current || !d) return;
      message($("proofs-error"), "");
      drawProofs(d.proofs);
    } catch (error) {
      if (page.current() === current) message($("proofs-error"), error.text);
    }
  }

  function drawProofs(proofs) {
    $("proofs-count").textContent = `(${proofs.length})`;
    $("proofs-count").dataset.count = String(proofs.length);
    $("proofs-list").replaceChildren(...proofs.map((proof) => {
      const li = document.createElement("li");
      li.dataset.testid = "proof";
      li.dataset.number = String(proof.number);
      const head = document.createElement("strong");
      head.textContent = `Proof #${proof.number}`;
      const meta = document.createElement("span");
      meta.className = "small";
      meta.textContent = ` ${when(proof.sentAt)}${proof.sentBy ? ` by ${proof.sentBy}` : ""}`
        + ` · ${proof.accepted} of ${proof.recipients.length} accepted`;
      const list = document.createElement("ul");
      for (const r of proof.recipients) {
        const item = document.createElement("li");
        item.dataset.testid = "proof-recipient";
        item.dataset.outcome = r.outcome;
        item.textContent = `${r.address}${r.profileId ? ` (profile ${r.profileId})` : ""}: `
          + `${r.outcome}${r.detail ? ` (${r.detail})` : ""}`;
        list.append(item);
      }
      li.append(head, meta, list);
      return li;
    }));
  }

  function togglePreview() {
    const panel = $("preview-panel");
    const open = panel.hidden;
    show(panel, open);
    $("preview-toggle").setAttribute("aria-expanded", String(open));
    if (open) {
      loadProofs();
      $("preview-profile").focus();
    }
  }

  async function showPreview(event) {
    event.preventDefault();
    const current = page.current();
    const profileId = $("preview-profile").value.trim();
    if (!current || !profileId) return;
    try {
      const p = (await call(PROOF_QUERIES.preview, { id: current.id, profileId }))
        .previewDelivery;
      if (page.current() !== current) return;
      message($("preview-error"), "");
      $("preview-subject").textContent = p.subject === null ? "(no subject: not an email)" : p.subject;
      $("preview-text").textContent = p.text;
      $("preview-result").dataset.profileId = profileId;
      show($("preview-result"));
      // A new frame each time, made once its box is shown: Chromium may never lay out a
      // sandboxed frame whose document arrived while it was hidden.
      const frame = document.createElement("iframe");
      frame.setAttribute("sandbox", "");
      frame.dataset.testid = "preview-html";
      frame.title = "HTML version of the message";
      frame.srcdoc = p.html === null ? "" : inert(p.html);
      show(frame, p.html !== null);
      $("preview-html").replaceWith(frame);
    } catch (error) {
      if (page.current() !== current) return;
      show($("preview-result"), false);
      message($("preview-error"), error.text);
    }
  }

  function askProof() {
    if (!page.current()) return;
    message($("proof-error"), "");
    $("proof-dialog").showModal();
    $("proof-addresses").focus();
  }

  async function sendProof(event) {
    event.preventDefault(); // the dialog stays open until the server answers
    const current = page.current();
    if (!current) return;
    const addresses = split($("proof-addresses").value);
    const profileIds = split($("proof-profiles").value);
    if (!addresses.length && !profileIds.length) {
      message($("proof-error"), "Give at least one address or profile id.");
      return;
    }
    const ok = $("proof-ok");
    ok.disabled = true;
    try {
      const proof = (await call(PROOF_QUERIES.sendProof, {
        id: current.id, input: { addresses, profileIds },
      })).sendProof;
      $("proof-dialog").close();
      if (page.current() !== current) return;
      message($("action-error"), "");
      message($("action-info"), `Proof #${proof.number} sent: ${proof.accepted} of `
        + `${proof.recipients.length} accepted by the MTA.`, "info");
      show($("preview-panel"));
      $("preview-toggle").setAttribute("aria-expanded", "true");
      loadProofs();
    } catch (error) {
      message($("proof-error"), error.text); // kept open: fix the addresses and send again
    } finally {
      ok.disabled = false;
    }
  }

  function wire() {
    $("send-proof").addEventListener("click", askProof);
    $("proof-form").addEventListener("submit", sendProof);
    $("proof-cancel").addEventListener("click", () => $("proof-dialog").close());
    $("preview-toggle").addEventListener("click", togglePreview);
    $("preview-form").addEventListener("submit", showPreview);
  }

  return { open, render, reset, wire };
}
