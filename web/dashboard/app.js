// The Deployment dashboard: sign in, deliveries, one delivery's Deployment block (live), actions,
// chart and sending logs. Every server string goes into the page with textContent, never as HTML.

import { gql } from "./api.js";
import { drawChart } from "./chart.js";
import { subscribe } from "./live.js";
import { proofsPart } from "./proofs.js";

const TOKEN_KEY = "dashboard.token";
const DELIVERIES_PAGE = 20;
const LOGS_PAGE = 10;
// The roles that may pause, resume and stop (docs/roles.md): the buttons are shown to them only.
const SENDERS = new Set(["START_DELIVERIES", "ADMINISTRATION"]);
// The roles that may send a proof.
const PREPARERS = new Set(["PREPARE_DELIVERIES", "START_DELIVERIES", "ADMINISTRATION"]);
// Pause, Resume and Stop: the mutation, and what the in-page confirmation asks before the call.
// Whether each is possible now is the delivery's allowedActions.
const LIFECYCLE_ACTIONS = {
  pause: {
    mutation: "pauseDelivery", title: "Pause the send",
    question: (label) => `Pause "${label}"? Messages not yet handed to the MTA wait until `
      + "you resume it; those already relayed are not called back.",
    done: "Paused",
  },
  resume: {
    mutation: "resumeDelivery", title: "Resume the send",
    question: (label) => `Resume "${label}"? Sending goes on where it stopped; no message is `
      + "sent twice.",
    done: "Resumed",
  },
  stop: {
    mutation: "stopDelivery", title: "Stop the send", danger: true,
    question: (label) => `Stop "${label}" for good? Messages not yet handed to the MTA are `
      + "never sent, and a stopped delivery cannot be resumed.",
    done: "Stopped",
  },
};
const KPIS = `kpis { toSend processed sent pending failed deliveredRate bouncesAndErrorsRate
  opens clicks openRate clickThroughRate statsComputedAt }`;
// The chart's past: the figures over time, stored by the server for the whole send.
const HISTORY = "kpiHistory { at kpis { deliveredRate bouncesAndErrorsRate } }";
const WAITING = "waitingFor { reason since retryAt attempts cause }";
// When it is sent: the contact date in its zone, the recurrence's rule in words, its next
// occurrences and aggregation period, and an aggregating occurrence's period (docs/scheduling.md).
const SCHEDULE = `timeZone scheduledAt scheduledAtLocal periodStart periodEnd
  recurrence { description aggregationPeriod nextOccurrences(count: 3) }`;
// When each message leaves: in each recipient's zone, or in waves (docs/send-time-and-waves.md).
const SEND_TIME = `waves { firstSize size intervalMinutes count currentWave nextWaveAt waiting }
  waitingForSendTime { messages nextAt }`;
const DELIVERY = `id label status channel version failureMessage allowedActions
  sendInRecipientTimeZone ${WAITING} ${SCHEDULE} ${SEND_TIME} ${KPIS}`;

const Q = {
  me: "{ me { name roles } }",
  deliveries: `query($first: Int, $after: String) { deliveries(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id label status channel } } } }`,
  delivery: `query($id: ID!) { delivery(id: $id) { ${DELIVERY}
    audience { profileIds(first: 1) } ${HISTORY} } }`,
  progress: `subscription($id: ID!) { deploymentProgress(deliveryId: $id) {
    status at delivery { label version failureMessage allowedActions sendInRecipientTimeZone }
    ${WAITING} ${SEND_TIME} ${KPIS} } }`,
  confirm: `mutation($id: ID!, $version: Int) { confirmSend(deliveryId: $id, version: $version) {
    ${DELIVERY} } }`,
  pauseDelivery: `mutation($id: ID!) { pauseDelivery(id: $id) { ${DELIVERY} } }`,
  resumeDelivery: `mutation($id: ID!) { resumeDelivery(id: $id) { ${DELIVERY} } }`,
  stopDelivery: `mutation($id: ID!) { stopDelivery(id: $id) { ${DELIVERY} } }`,
  stats: `mutation($id: ID!) { computeStats(deliveryId: $id) {
    toSend processed sent pending failed deliveredRate bouncesAndErrorsRate
    opens clicks openRate clickThroughRate statsComputedAt } }`,
  logs: `query($id: ID!, $status: SendingLogStatus, $first: Int, $after: String) {
    sendingLogs(deliveryId: $id, status: $status, first: $first, after: $after) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { node { id address status failureType failureReason retries eventAt } } } }`,
};

// Which figure goes where, and how it reads.
const FIGURES = {
  toSend: "count", sent: "count", processed: "count", pending: "count", failed: "count",
  opens: "count", clicks: "count", deliveredRate: "rate", bouncesAndErrorsRate: "rate",
  openRate: "rate", clickThroughRate: "rate", statsComputedAt: "time",
};

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const show = (node, visible = true) => { node.hidden = !visible; };
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

const state = {
  token: null,
  roles: [],
  deliveries: { after: null, byId: new Map() },
  current: null, // { id, status, version, reviewed, kpis, points, live, waiting }
  waitingTimer: null, // refreshes "retrying in …" every second
  logs: { status: "", cursors: [null], index: 0, next: null },
};

function message(node, text, kind = "error") {
  node.textContent = text || "";
  node.className = `message ${kind}`;
  show(node, Boolean(text));
}

function setBadge(node, status) {
  node.textContent = status;
  node.className = `badge status-${String(status).toLowerCase()}`;
}

/** A call with the signed-in token. A token the server no longer accepts (revoked, or
 *  replaced by a new one) sends the operator back to the sign-in form, saying why. */
async function call(query, variables) {
  const token = state.token;
  try {
    return await gql(token, query, variables);
  } catch (error) {
    if (error.code === "UNAUTHENTICATED" && token && state.token === token && !$("board").hidden) {
      signOut(`This token is no longer valid (${error.message}). Sign in again.`);
    }
    throw error;
  }
}

// ---- sign in / out ----

async function signIn(token) {
  state.token = token;
  let me;
  try {
    me = (await call(Q.me)).me;
  } catch (error) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    const refused = error.code === "UNAUTHENTICATED";
    message($("signin-error"), refused
      ? `This token was refused by the server (${error.message}). Check it and sign in again.`
      : `Could not sign in: ${error.text}`);
    showSignIn();
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.roles = me.roles;
  $("operator-name").textContent = me.name;
  $("operator-roles").textContent = me.roles.length ? me.roles.join(", ") : "no roles";
  message($("signin-error"), "");
  show($("signin"), false);
  show($("who"));
  show($("board"));
  await loadDeliveries(true);
}

function showSignIn() {
  show($("who"), false);
  show($("board"), false);
  show($("signin"));
  $("token").focus();
}

function signOut(why = "") {
  closeDelivery();
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.roles = [];
  $("token").value = "";
  $("deliveries-list").replaceChildren();
  message($("signin-error"), why);
  showSignIn();
}

// ---- deliveries list ----

async function loadDeliveries(reset) {
  const list = $("deliveries-list");
  if (reset) {
    list.replaceChildren();
    state.deliveries = { after: null, byId: new Map() };
  }
  try {
    const page = (await call(Q.deliveries, {
      first: DELIVERIES_PAGE, after: state.deliveries.after,
    })).deliveries;
    message($("deliveries-error"), "");
    $("deliveries-total").textContent = `(${page.totalCount})`;
    for (const { node } of page.edges) list.append(deliveryItem(node));
    state.deliveries.after = page.pageInfo.endCursor;
    show($("deliveries-more"), page.pageInfo.hasNextPage);
    if (!page.totalCount) message($("deliveries-error"), "No deliveries yet.", "info");
  } catch (error) {
    message($("deliveries-error"), error.text);
  }
}

function deliveryItem(delivery) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.testid = "delivery-item";
  button.dataset.id = delivery.id;
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = delivery.label;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = `#${delivery.id} · ${delivery.channel}`;
  const badge = document.createElement("span");
  setBadge(badge, delivery.status);
  button.append(label, badge, meta);
  button.addEventListener("click", () => openDelivery(delivery.id));
  li.append(button);
  state.deliveries.byId.set(delivery.id, badge);
  return li;
}

// ---- one delivery ----

function closeDelivery() {
  if (state.current && state.current.live) state.current.live.close();
  state.current = null;
  showWaiting(null);
  proofs.reset();
  show($("deployment"), false);
  show($("placeholder"));
}

async function openDelivery(id) {
  closeDelivery();
  for (const item of document.querySelectorAll('[data-testid="delivery-item"]')) {
    item.classList.toggle("selected", item.dataset.id === id);
  }
  let delivery;
  try {
    delivery = (await call(Q.delivery, { id })).delivery;
  } catch (error) {
    message($("deliveries-error"), error.text);
    return;
  }
  if (!delivery) {
    message($("deliveries-error"), `Delivery #${id} no longer exists.`);
    return;
  }
  const current = {
    id, status: delivery.status, channel: delivery.channel, version: delivery.version,
    kpis: delivery.kpis, live: null,
    // A page opened in the middle of a send draws it from the start.
    points: (delivery.kpiHistory || []).map((p) => ({
      t: Date.parse(p.at), deliveredRate: p.kpis.deliveredRate,
      bouncesAndErrorsRate: p.kpis.bouncesAndErrorsRate,
    })),
  };
  state.current = current;
  message($("action-error"), "");
  message($("action-info"), "", "info");
  show($("conn-banner"), false);
  show($("placeholder"), false);
  show($("deployment"));
  render(delivery);
  proofs.open(delivery);
  showWaiting(delivery.waitingFor);
  showSchedule(delivery);
  showSendTime(delivery.sendInRecipientTimeZone, delivery.waves, delivery.waitingForSendTime);
  addPoint(delivery.kpis, Date.now());
  state.logs = { status: $("logs-filter").value, cursors: [null], index: 0, next: null };
  loadLogs();
  startLive(current);
}

/** Subscribe to the delivery's progress (again after a Resume brought a FAILED delivery back:
 *  the server had ended the subscription). */
function startLive(current) {
  current.liveOver = false;
  current.live = subscribe({
    token: state.token,
    query: Q.progress,
    variables: { id: current.id },
    onData: (data) => {
      if (state.current !== current) return;
      const p = data.deploymentProgress;
      render({ ...p.delivery, status: p.status, kpis: p.kpis });
      showWaiting(p.waitingFor);
      showSendTime(p.delivery.sendInRecipientTimeZone, p.waves, p.waitingForSendTime);
      addPoint(p.kpis, Date.parse(p.at) || Date.now());
    },
    onState: (s) => {
      if (state.current !== current) return;
      if (["completed", "error", "refused"].includes(s.state)) current.liveOver = true;
      liveState(s);
      if (s.state === "completed") loadLogs(); // the final statuses
    },
  });
}

/** Show the delivery as the server last described it (a query, a mutation's answer or a live
 *  snapshot): figures, status, and the buttons its allowedActions enable. */
function render({ label, status, kpis, failureMessage: failure, version, allowedActions }) {
  const current = state.current;
  current.allowed = new Set(allowedActions);
  const changed = current.status !== status;
  current.status = status;
  current.kpis = kpis;
  current.label = label;
  current.version = version;
  $("dep-label").textContent = label;
  setBadge($("dep-status"), status);
  const badge = state.deliveries.byId.get(current.id);
  if (badge) setBadge(badge, status);
  if (failure) message($("action-error"), `This delivery failed: ${failure}`);
  renderKpis(kpis);
  if (changed) loadLogs(); // the logs' statuses moved with the delivery's
  const mayStart = state.roles.some((role) => SENDERS.has(role));
  enable($("confirm-send"), "CONFIRM", mayStart, "Start sending this delivery", status);
  enable($("compute-stats"), "COMPUTE_STATS", mayStart,
    "Recount every figure from the sending logs", status);
  renderLifecycleButtons(status, mayStart);
  proofs.render(status);
}

/** Whether the operator may do `action` to the open delivery now: its allowedActions, from the
 *  server's one table of each action's statuses and role (models/actions.py), so the page
 *  copies no rule. The server checks again when the button is pressed. */
function allowed(action) {
  return Boolean(state.current && state.current.allowed && state.current.allowed.has(action));
}

/** Enable a button when its action is allowed; otherwise say why in its tooltip. */
function enable(button, action, mayUse, title, status) {
  button.disabled = !allowed(action);
  button.title = !button.disabled ? title
    : mayUse ? `Not possible while the delivery is ${status}.`
      : "Your roles do not allow this (START_DELIVERIES is needed).";
}

/** Pause, Resume, Stop: shown to the roles that may use them, enabled by allowedActions. */
function renderLifecycleButtons(status, mayStart) {
  for (const [name, action] of Object.entries(LIFECYCLE_ACTIONS)) {
    show($(name), mayStart);
    enable($(name), name.toUpperCase(), mayStart, action.title, status);
  }
}

// "Contact date 2027-06-01 09:00 (Europe/Madrid) · 07:00 UTC", "Recurrence: every day at 09:00
// (Europe/Madrid) · aggregated by DAY · next …": the wall clock of the delivery's zone comes from
// the server's scheduledAtLocal (with its offset), not from the browser's zone.
const AGGREGATION = { DAY: "by day", WEEK: "by week", MONTH: "by month" };
const wall = (local) => (local ? local.slice(0, 16).replace("T", " ") : "");
const utcTime = (iso) => new Date(iso).toISOString().slice(0, 16).replace("T", " ");

function showSchedule(d) {
  const node = $("schedule");
  const parts = [];
  if (d.scheduledAt) {
    parts.push(`Contact date ${wall(d.scheduledAtLocal)} (${d.timeZone}) · ${utcTime(d.scheduledAt)} UTC`);
  } else if (d.timeZone && d.timeZone !== "UTC") {
    parts.push(`Time zone ${d.timeZone}`);
  }
  const r = d.recurrence;
  if (r) {
    let text = `Recurrence: ${r.description}`;
    if (r.aggregationPeriod && r.aggregationPeriod !== "NONE") {
      text += ` · one occurrence ${AGGREGATION[r.aggregationPeriod] || r.aggregationPeriod}`;
    }
    if (r.nextOccurrences.length) {
      text += ` · next ${r.nextOccurrences.map((t) => `${utcTime(t)} UTC`).join(", ")}`;
    }
    parts.push(text);
  }
  if (d.periodStart) {
    parts.push(`Aggregates the executions from ${utcTime(d.periodStart)} to ${utcTime(d.periodEnd)} UTC`);
  }
  node.textContent = parts.join(" — ");
  node.dataset.timeZone = d.timeZone || "";
  show(node, parts.length > 0);
}

// "Waiting for the MTA since …, retrying in …": the engine backs off while the MTA is down and
// goes on by itself; the countdown is refreshed every second until the next snapshot.
const WAITING_FOR = { MTA_UNAVAILABLE: "the MTA" };

function showWaiting(waiting) {
  clearInterval(state.waitingTimer);
  state.waitingTimer = null;
  const node = $("waiting");
  if (!waiting) {
    show(node, false);
    delete node.dataset.reason;
    return;
  }
  const what = WAITING_FOR[waiting.reason] || waiting.reason;
  const draw = () => {
    const left = waiting.retryAt ? Math.round((Date.parse(waiting.retryAt) - Date.now()) / 1000) : null;
    const next = left === null ? "" : left > 0 ? `, retrying in ${left} s` : ", retrying now";
    const cause = waiting.cause ? ` (${waiting.cause}; ${waiting.attempts} attempts)` : "";
    node.textContent = `Waiting for ${what} since ${when(waiting.since)}${next}${cause}. `
      + "Sending goes on by itself when it answers.";
  };
  node.dataset.reason = waiting.reason;
  draw();
  show(node);
  state.waitingTimer = setInterval(draw, 1000);
}

// "Wave 2 of 5 under way; the next starts at …" and "Sent in each recipient's time zone: 120
// messages wait for their time, the next at …". Hidden for a delivery sent at once.
function showSendTime(inRecipientZone, waves, waiting) {
  const node = $("send-time");
  const parts = [];
  if (waves) {
    const plan = `waves of ${waves.size} every ${waves.intervalMinutes} min after a first`
      + ` of ${waves.firstSize}`;
    parts.push(waves.currentWave === 0
      ? `Sent in ${waves.count} ${plan}; none started yet.`
      : `Wave ${waves.currentWave} of ${waves.count} under way (${plan}).`);
    if (waves.nextWaveAt) parts.push(`The next wave starts at ${when(waves.nextWaveAt)}.`);
  } else if (inRecipientZone) {
    parts.push("Sent at the contact date's local time in each recipient's time zone.");
  }
  if (waiting && waiting.messages > 0) {
    const next = waiting.nextAt ? `, the next at ${when(waiting.nextAt)}` : "";
    parts.push(`${waiting.messages} message(s) wait for their time${next}.`);
  }
  node.textContent = parts.join(" ");
  show(node, parts.length > 0);
}

function renderKpis(kpis) {
  for (const [key, kind] of Object.entries(FIGURES)) {
    const node = $(`kpi-${key}`);
    const value = kpis[key];
    node.dataset.value = value === null ? "" : String(value);
    // A rate is null where it does not apply (open rate and CTR of SMS and push).
    node.textContent = value === null || value === undefined ? (kind === "rate" ? "n/a" : "—")
      : kind === "rate" ? `${Number(value).toFixed(2)} %`
      : kind === "time" ? (value ? when(value) : "never") : String(value);
  }
  const bar = $("progress-bar");
  const share = kpis.toSend ? Math.min(1, kpis.processed / kpis.toSend) : 0;
  $("progress-fill").style.width = `${(share * 100).toFixed(1)}%`;
  bar.setAttribute("aria-valuemax", String(kpis.toSend));
  bar.setAttribute("aria-valuenow", String(kpis.processed));
  $("progress-text").textContent = `${kpis.processed} / ${kpis.toSend}`;
  $("progress-text").dataset.processed = String(kpis.processed);
  $("progress-text").dataset.toSend = String(kpis.toSend);
}

function addPoint(kpis, t) {
  const points = state.current.points;
  const last = points[points.length - 1];
  const point = { t, deliveredRate: kpis.deliveredRate, bouncesAndErrorsRate: kpis.bouncesAndErrorsRate };
  if (last && t < last.t) point.t = last.t;
  points.push(point);
  drawChart($("chart"), points);
}

function liveState(s) {
  const banner = $("conn-banner");
  const live = $("live-state");
  banner.className = "banner";
  switch (s.state) {
    case "connecting":
      live.textContent = "connecting…";
      break;
    case "live":
      live.textContent = "● live";
      show(banner, false);
      break;
    case "reconnecting":
      live.textContent = "offline";
      banner.textContent = s.delay
        ? `Connection lost, reconnecting… (attempt ${s.attempt}, next try in ${s.delay / 1000} s)`
        : `Connection lost, reconnecting… (attempt ${s.attempt})`;
      banner.dataset.attempt = String(s.attempt);
      show(banner);
      break;
    case "completed":
      live.textContent = "final figures (no more live updates)";
      show(banner, false);
      break;
    case "refused":
      live.textContent = "offline";
      banner.className = "banner error";
      banner.textContent = s.wasLive
        ? "Live updates stopped: the server closed the connection because this token is no "
          + `longer valid (${s.reason || "WebSocket closed 4403"}): it was revoked or replaced. `
        : "This token was refused for live updates (WebSocket closed 4403). ";
      banner.append(signInAgainButton());
      show(banner);
      break;
    case "error":
      live.textContent = "offline";
      banner.className = "banner error";
      banner.textContent = `Live updates stopped: ${s.message}`;
      show(banner);
      break;
    default:
      break;
  }
}

function signInAgainButton() {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.testid = "signin-again";
  button.textContent = "Sign in again";
  button.addEventListener("click", () => signOut("Sign in again with a valid token."));
  return button;
}

// ---- actions ----

function askConfirm() {
  const current = state.current;
  if (!current) return;
  current.reviewed = current.version; // what the dialog shows is what OK confirms
  $("confirm-label").textContent = current.label;
  $("confirm-count").textContent = String(current.kpis.toSend);
  $("confirm-dialog").showModal();
  $("confirm-ok").focus();
}

async function confirmSend() {
  $("confirm-dialog").close();
  const current = state.current;
  if (!current) return;
  message($("action-error"), "");
  $("confirm-send").disabled = true;
  try {
    const d = (await call(Q.confirm, { id: current.id, version: current.reviewed })).confirmSend;
    if (state.current !== current) return;
    render(d);
    showSchedule(d);
    showSendTime(d.sendInRecipientTimeZone, d.waves, d.waitingForSendTime);
    message($("action-info"), `Send confirmed at ${new Date().toLocaleTimeString()}.`, "info");
  } catch (error) {
    if (state.current !== current) return;
    $("confirm-send").disabled = !allowed("CONFIRM");
    message($("action-info"), "", "info");
    message($("action-error"), error.text);
    if (error.code === "INVALID_STATE") refresh(current); // show what changed before a retry
  }
}

function askAction(name) {
  const current = state.current;
  const action = LIFECYCLE_ACTIONS[name];
  if (!current || !action) return;
  current.asked = name;
  const dialog = $("action-dialog");
  dialog.dataset.action = name;
  dialog.className = action.danger ? "danger" : "";
  $("action-title").textContent = action.title;
  $("action-question").textContent = action.question(current.label);
  dialog.showModal();
  $("action-cancel").focus(); // an Enter by habit cancels: OK must be chosen
}

async function runAction() {
  const current = state.current;
  const name = current && current.asked;
  $("action-dialog").close();
  if (!name) return;
  current.asked = null;
  const action = LIFECYCLE_ACTIONS[name];
  message($("action-error"), "");
  const button = $(name);
  button.disabled = true;
  try {
    const d = (await call(Q[action.mutation], { id: current.id }))[action.mutation];
    if (state.current !== current) return;
    render(d);
    showWaiting(d.waitingFor);
    showSendTime(d.sendInRecipientTimeZone, d.waves, d.waitingForSendTime);
    message($("action-info"), `${action.done} at ${new Date().toLocaleTimeString()}.`, "info");
    if (current.liveOver && !["STOPPED", "FINISHED", "FAILED"].includes(d.status)) {
      startLive(current); // a resumed FAILED delivery is live again
    }
  } catch (error) {
    if (state.current !== current) return;
    renderLifecycleButtons(current.status, true);
    message($("action-info"), "", "info");
    message($("action-error"), error.text);
    if (error.code === "INVALID_STATE") refresh(current); // show what changed meanwhile
  }
}

async function refresh(current) {
  try {
    const d = (await call(Q.delivery, { id: current.id })).delivery;
    if (state.current === current && d) {
      render(d);
      showSchedule(d);
      showSendTime(d.sendInRecipientTimeZone, d.waves, d.waitingForSendTime);
    }
  } catch {
    // the error above is what the operator needs to read
  }
}

async function computeStats() {
  const current = state.current;
  if (!current) return;
  message($("action-error"), "");
  const button = $("compute-stats");
  button.disabled = true;
  try {
    const kpis = (await call(Q.stats, { id: current.id })).computeStats;
    if (state.current !== current) return;
    current.kpis = kpis;
    renderKpis(kpis);
    addPoint(kpis, Date.now());
    message($("action-info"), `Stats computed at ${when(kpis.statsComputedAt)}.`, "info");
  } catch (error) {
    if (state.current === current) message($("action-error"), error.text);
  } finally {
    button.disabled = !allowed("COMPUTE_STATS");
  }
}

// ---- sending logs ----

async function loadLogs() {
  const current = state.current;
  if (!current) return;
  const logs = state.logs;
  const { index } = logs;
  const body = $("logs-body");
  try {
    const page = (await call(Q.logs, {
      id: current.id, status: logs.status || null, first: LOGS_PAGE,
      after: logs.cursors[index],
    })).sendingLogs;
    // A newer filter or page was asked for meanwhile: its answer is the one to show.
    if (state.current !== current || state.logs !== logs || logs.index !== index) return;
    if (!page) throw new Error(`Delivery #${current.id} no longer exists.`);
    message($("logs-error"), "");
    body.replaceChildren(...page.edges.map(({ node }) => logRow(node)));
    const from = logs.index * LOGS_PAGE;
    $("logs-total").textContent = `(${page.totalCount})`;
    $("logs-total").dataset.total = String(page.totalCount);
    $("logs-page").textContent = page.edges.length
      ? `rows ${from + 1}–${from + page.edges.length} of ${page.totalCount}`
      : "no rows";
    $("logs-page").dataset.page = String(logs.index + 1);
    logs.next = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
    $("logs-next").disabled = !logs.next;
    $("logs-prev").disabled = logs.index === 0;
  } catch (error) {
    if (state.current !== current || state.logs !== logs || logs.index !== index) return;
    body.replaceChildren();
    $("logs-total").textContent = "";
    $("logs-page").textContent = "";
    $("logs-next").disabled = true;
    $("logs-prev").disabled = true;
    message($("logs-error"), error.text || error.message);
  }
}

function logRow(log) {
  const tr = document.createElement("tr");
  tr.dataset.testid = "log-row";
  tr.dataset.status = log.status;
  const cells = [log.address, log.status, log.failureType || "", log.failureReason || "",
    String(log.retries), log.eventAt ? when(log.eventAt) : ""];
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  return tr;
}

function logsFrom(status) {
  state.logs = { status, cursors: [null], index: 0, next: null };
  loadLogs();
}

// ---- wiring ----

const proofs = proofsPart({
  $, show, message, when, call,
  current: () => state.current,
  allowed,
  mayProof: () => state.roles.some((role) => PREPARERS.has(role)),
});

function wire() {
  proofs.wire();
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim().replace(/^bearer\s+/i, "");
    if (token) signIn(token);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("deliveries-more").addEventListener("click", () => loadDeliveries(false));
  $("confirm-send").addEventListener("click", askConfirm);
  $("confirm-ok").addEventListener("click", confirmSend);
  $("confirm-cancel").addEventListener("click", () => $("confirm-dialog").close());
  $("compute-stats").addEventListener("click", computeStats);
  for (const name of Object.keys(LIFECYCLE_ACTIONS)) {
    $(name).addEventListener("click", () => askAction(name));
  }
  $("action-ok").addEventListener("click", runAction);
  $("action-cancel").addEventListener("click", () => $("action-dialog").close());
  $("action-dialog").addEventListener("close", () => {
    if (state.current) state.current.asked = null;
  });
  $("logs-filter").addEventListener("change", (event) => logsFrom(event.target.value));
  $("logs-refresh").addEventListener("click", () => loadLogs());
  $("logs-next").addEventListener("click", () => {
    const logs = state.logs;
    if (!logs.next) return;
    logs.cursors = logs.cursors.slice(0, logs.index + 1).concat([logs.next]);
    logs.index += 1;
    loadLogs();
  });
  $("logs-prev").addEventListener("click", () => {
    if (state.logs.index === 0) return;
    state.logs.index -= 1;
    loadLogs();
  });
}

wire();
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved);
else showSignIn();
