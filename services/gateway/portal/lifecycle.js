// pushmail tenant portal, part two (loaded after app.js, whose helpers it
// uses): a phone's lifecycle (register it with its token shown once, a new
// token, revoke), an IMAP/POP3 account's mailbox and submission servers,
// a phone's mail app (app passwords), the tenant's outbound relay, and the SMS outbox where the platform keeps one (no SMS centre:
// standalone).
"use strict";

// The submission settings typed into the fields `<prefix>-host`, `-port`,
// `-tls` and `-username`; null when no host is given (none wanted). An
// empty port is the usual one for the TLS mode, an empty username the
// mailbox login.
function submissionFrom(prefix) {
  const host = $(`${prefix}-host`).value.trim();
  if (!host) return null;
  const tls = $(`${prefix}-tls`).value;
  return { host, port: Number($(`${prefix}-port`).value) || (tls === "implicit" ? 465 : 587),
    tls, username: $(`${prefix}-username`).value.trim() };
}

function showServerForm(account) {
  const watched = account.kind === "external_imap" || account.kind === "external_pop3";
  $("server-form").hidden = !watched;
  if (!watched || !account.server) return;
  $("edit-host").value = account.server.host;
  $("edit-port").value = account.server.port;
  $("edit-tls").value = account.server.tls;
  $("edit-username").value = account.server.username;
  $("edit-password").value = "";
  const submission = account.submission;
  $("edit-submission-host").value = submission ? submission.host : "";
  $("edit-submission-port").value = submission ? submission.port : "";
  $("edit-submission-tls").value = submission ? submission.tls : "starttls";
  $("edit-submission-username").value = submission ? submission.username : "";
  $("watched-fields").hidden = account.kind !== "external_imap";
  $("edit-watched-folders").value = (account.watched_folders || []).join(", ");
}

async function saveServer() {
  const body = {
    server: { host: $("edit-host").value.trim(), port: Number($("edit-port").value),
      tls: $("edit-tls").value, username: $("edit-username").value.trim() },
  };
  if ($("edit-password").value) body.password = $("edit-password").value;
  // A blank host removes the settings the account has (and sends nothing
  // when it has none).
  const submission = submissionFrom("edit-submission");
  if (submission) body.submission = submission;
  else if (state.account.submission) body.clear_submission = true;
  if (state.account.kind === "external_imap") body.watched_folders = list($("edit-watched-folders").value);
  const account = await api("PATCH", tenantPath(`/accounts/${state.account.id}`), body);
  state.account = account;
  showServerForm(account);
  status("Mailbox server saved; it is used from the next connection.", true);
}

async function loadOutboundRelay() {
  const relay = (await api("GET", tenantPath("/relay/submission"))).server;
  $("outbound-host").value = relay ? relay.host : "";
  $("outbound-port").value = relay ? relay.port : "";
  $("outbound-tls").value = relay ? relay.tls : "starttls";
  $("outbound-username").value = relay ? relay.username : "";
  $("outbound-password").value = "";
  state.outboundRelay = relay;
}

// A blank host removes the relay; otherwise the fields replace it (a
// blank password keeps the stored one).
async function saveOutboundRelay() {
  const server = submissionFrom("outbound");
  if (!server) {
    if (!state.outboundRelay) return status("No outbound relay to remove: give a host to set one.");
    await api("DELETE", tenantPath("/relay/submission"));
    status("Outbound relay removed.", true);
  } else {
    const body = { server };
    if ($("outbound-password").value) body.password = $("outbound-password").value;
    await api("PUT", tenantPath("/relay/submission"), body);
    status("Outbound relay saved; forwarded and webhook accounts send through it.", true);
  }
  await loadOutboundRelay();
}

function showToken(issued, what) {
  const token = issued.token;
  $("new-device-token").textContent = token;
  $("new-device-command").textContent = `pushmail device --token ${token} --fetch`;
  $("new-device").hidden = false;
  status(`${what}: copy the token now, it is not shown again.`, true);
}

// One device in the bindings table: its state and what can be done to it.
function deviceItem(device) {
  const span = document.createElement("span");
  span.className = device.online ? "device online" : "device";
  span.dataset.id = device.id;
  span.textContent = `${device.label || device.id} ${device.online ? "● online" : "○ offline"} `;
  const button = (text, action) => {
    const b = document.createElement("button");
    b.textContent = text;
    b.addEventListener("click", (e) => {
      e.stopPropagation();
      status("");
      action().catch((err) => status(err.message));
    });
    span.appendChild(b);
  };
  button("New token", async () => {
    showToken(await api("POST", tenantPath(`/devices/${device.id}/token`)), "New token issued");
  });
  button("Revoke", async () => {
    if (!window.confirm(`Revoke ${device.label || device.id}? Its tokens stop working at once.`)) return;
    await api("POST", tenantPath(`/devices/${device.id}/revoke`));
    status("Device revoked.", true);
    await loadBindings();
  });
  return span;
}

function fillRegisterForm(bindings) {
  const numbers = [...new Set(bindings.filter((b) => b.state === "verified").map((b) => b.msisdn))];
  const select = $("register-number");
  const chosen = select.value;
  select.replaceChildren(...numbers.map((n) => {
    const option = document.createElement("option");
    option.value = n;
    option.textContent = n;
    return option;
  }));
  if (numbers.includes(chosen)) select.value = chosen;
  $("register-form").hidden = numbers.length === 0;
  const appNumbers = $("app-password-number");
  const appChosen = appNumbers.value;
  appNumbers.replaceChildren(...[...select.options].map((o) => o.cloneNode(true)));
  if (numbers.includes(appChosen)) appNumbers.value = appChosen;
  $("app-password-form").hidden = numbers.length === 0;
  loadAppPasswords().catch((err) => status(err.message));
}

// What an app password's phone is doing: wiped, waiting for a wipe,
// revoked, or in use.
function appPasswordState(p, used) {
  const wipe = p.wipe;
  const what = (w) => (w.kind === "device" ? "whole phone" : "account data only");
  if (wipe && wipe.done_at_ms) return `wiped (${what(wipe)})`;
  if (p.revoked_at_ms) return "revoked";
  if (wipe) return `${used}; wipe (${what(wipe)}) waiting for the phone`;
  return used;
}

// A button that asks first, then posts `action` for the app password.
function appPasswordButton(p, label, question, action, body, done) {
  const b = document.createElement("button");
  b.textContent = label;
  b.addEventListener("click", () => {
    if (!window.confirm(question)) return;
    status("");
    api("POST", tenantPath(`/app-passwords/${p.id}/${action}`), body)
      .then(() => status(done, true))
      .then(loadBindings)
      .catch((err) => status(err.message));
  });
  return b;
}

// The account's app passwords: which phone, whether it has logged in yet,
// and for the live ones a revoke button and the remote wipes (a lost
// phone: the whole phone; a leaver's own phone: the account's data).
async function loadAppPasswords() {
  const page = await api("GET", tenantPath(`/accounts/${state.account.id}/app-passwords`));
  $("app-passwords").replaceChildren(...page.items.map((p) => {
    const item = document.createElement("li");
    const said = [p.device && p.device.model, p.device && p.device.os].filter(Boolean).join(", ");
    const phone = said || p.client_device_type || "phone";
    const used = p.client_device_id ? `${phone} ${p.client_device_id}` : "not used yet";
    item.textContent = `${p.label} (${p.msisdn}): ${appPasswordState(p, used)} `;
    if (!p.revoked_at_ms) {
      item.append(
        appPasswordButton(p, "Revoke",
          `Revoke the app password of ${p.label}? Its phone stops syncing at once.`,
          "revoke", undefined, "App password revoked."),
        appPasswordButton(p, "Wipe phone",
          `Erase everything on ${p.label} (a factory reset) at its next connection? This cannot be undone.`,
          "wipe", { kind: "device" }, "Wipe ordered: the phone is erased when it next connects."),
        appPasswordButton(p, "Wipe account data",
          `Erase this account's mail, contacts and calendars from ${p.label} at its next connection (phones with ActiveSync 16.1; older ones are shut out instead)?`,
          "wipe", { kind: "account" }, "Account wipe ordered: it happens when the phone next connects."),
      );
    }
    return item;
  }));
}

async function makeAppPassword() {
  const made = await api("POST", tenantPath(`/accounts/${state.account.id}/app-passwords`), {
    msisdn: $("app-password-number").value,
    label: $("app-password-label").value.trim(),
  });
  $("app-password-label").value = "";
  $("new-app-password-value").textContent = made.password;
  $("new-app-password-user").textContent = state.account.address;
  $("new-app-password").hidden = false;
  status("App password made: copy it now, it is not shown again.", true);
  await loadBindings();
}

async function registerPhone() {
  const issued = await api("POST", tenantPath("/devices"), {
    msisdn: $("register-number").value,
    label: $("register-label").value.trim(),
    has_push_client: $("register-push").checked,
  });
  $("register-label").value = "";
  showToken(issued, "Phone registered");
  await loadBindings();
}

const purposes = { otp: "verification code", wake_up: "wake-up", notice: "notice" };

async function loadSms(more) {
  // An operator with no tenant chosen sees every tenant's SMS.
  const everyone = state.operator && !$("tenant-id").value.trim();
  let path = everyone ? "/api/v1/sms?page_size=50" : tenantPath("/sms?page_size=50");
  if (more && state.smsCursor) path += `&cursor=${encodeURIComponent(state.smsCursor)}`;
  const page = await api("GET", path);
  const body = $("sms").tBodies[0];
  if (!more) body.replaceChildren();
  for (const sms of page.items) {
    const row = document.createElement("tr");
    row.dataset.id = sms.id;
    row.dataset.purpose = sms.purpose;
    cell(row, new Date(sms.at_ms).toISOString().replace("T", " ").slice(0, 19));
    cell(row, sms.msisdn).className = "msisdn";
    cell(row, purposes[sms.purpose] || sms.purpose);
    const text = sms.kind === "wap_push" ? `WAP Push “${sms.text}” → ${sms.url}` : sms.text;
    cell(row, text).className = "text";
    body.appendChild(row);
  }
  if (!more && page.items.length === 0) {
    const row = document.createElement("tr");
    cell(row, "no SMS sent yet").colSpan = 4;
    body.appendChild(row);
  }
  state.smsCursor = page.next_cursor;
  $("more-sms").hidden = !state.smsCursor;
}

async function openSms() {
  if (state.view !== "sms") state.before = state.view;
  show("sms");
  state.smsPaged = false;
  await loadSms(false);
  // While the page is open, new SMS appear by themselves (a code sent a
  // moment ago) unless older pages were asked for.
  if (!state.smsTimer) {
    state.smsTimer = window.setInterval(() => {
      if (state.view === "sms" && !state.smsPaged) loadSms(false).catch((err) => status(err.message));
    }, 2000);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  on("server-form", "submit", saveServer);
  on("outbound-relay-form", "submit", saveOutboundRelay);
  on("register-form", "submit", registerPhone);
  on("app-password-form", "submit", makeAppPassword);
  on("open-sms", "click", openSms);
  on("verify-sms", "click", openSms);
  on("refresh-sms", "click", () => loadSms(false));
  on("more-sms", "click", () => {
    state.smsPaged = true;
    return loadSms(true);
  });
  on("open-accounts", "click", () => show(state.before === "account" ? "account" : "tenant"));
});
