// pushmail tenant portal: plain JavaScript over the REST API (/api/v1),
// no build step. The session is an HttpOnly cookie set at sign-in; every
// change carries the X-Pushmail-Portal header the API requires of it.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { tenant: null, operator: false, account: null, cursor: null, pending: null,
  smsOutbox: false, view: "sign-in", before: "tenant" };

function status(text, ok) {
  $("status").textContent = text || "";
  $("status").className = ok ? "ok" : "";
}

async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") options.headers["X-Pushmail-Portal"] = "1";
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401) show("sign-in");
    throw new Error((data.error && data.error.message) || response.statusText);
  }
  return data;
}

function tenantPath(rest) {
  const tenant = state.operator ? $("tenant-id").value.trim() : state.tenant;
  return `/api/v1/tenants/${encodeURIComponent(tenant)}${rest}`;
}

function show(view) {
  state.view = view;
  $("sign-in-view").hidden = view !== "sign-in";
  $("tenant-view").hidden = view === "sign-in" || view === "sms";
  $("account-view").hidden = view !== "account";
  $("sms-view").hidden = view !== "sms";
  $("sign-out").hidden = view === "sign-in";
  $("open-sms").hidden = view === "sign-in" || view === "sms" || !state.smsOutbox;
  $("open-accounts").hidden = view !== "sms";
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

async function signedIn(me) {
  state.operator = me.role === "operator";
  state.tenant = me.tenant_id;
  state.smsOutbox = me.sms_outbox === true;
  $("who").textContent = state.operator ? "operator" : `tenant ${me.tenant_id}`;
  $("tenant-picker").hidden = !state.operator;
  show("tenant");
  if (!state.operator) await loadTenant();
}

async function loadTenant() {
  await loadAccounts(false);
  await loadKeys();
  await loadRelay();
}

const day = (ms) => (ms ? new Date(ms).toISOString().slice(0, 10) : "");

async function loadKeys() {
  const page = await api("GET", tenantPath("/keys"));
  const body = $("keys").tBodies[0];
  body.replaceChildren();
  for (const key of page.items) {
    const row = document.createElement("tr");
    row.dataset.id = key.id;
    cell(row, key.prefix ? `${key.prefix}…` : "(first key)");
    cell(row, key.description);
    cell(row, day(key.created_at_ms));
    const until = key.expires_at_ms ? new Date(key.expires_at_ms).toISOString().replace("T", " ").slice(0, 16) : "";
    cell(row, key.active ? (key.revoked_at_ms ? `revoked, works until ${until}` : "active") : "revoked").className = "state";
    const actions = cell(row, "");
    if (key.active) {
      const revoke = document.createElement("button");
      revoke.textContent = "Revoke";
      revoke.addEventListener("click", (e) => {
        e.stopPropagation();
        revokeKey(key).catch((err) => status(err.message));
      });
      actions.appendChild(revoke);
    }
    body.appendChild(row);
  }
}

async function revokeKey(key) {
  const grace = Number($("revoke-grace").value);
  const path = tenantPath(`/keys/${key.id}/revoke`);
  try {
    await api("POST", path, { grace_seconds: grace });
  } catch (err) {
    if (!/last working key/.test(err.message)) throw err;
    if (!window.confirm("This is the last working key: revoking it locks every caller out. Revoke anyway?")) return;
    await api("POST", path, { grace_seconds: grace, confirm_last_key: true });
  }
  status(grace ? "Key revoked; it works until the grace ends." : "Key revoked.", true);
  await loadKeys();
}

async function loadRelay() {
  const page = await api("GET", tenantPath("/relay/credentials"));
  const body = $("relay-credentials").tBodies[0];
  body.replaceChildren();
  for (const credential of page.items) {
    const row = document.createElement("tr");
    row.dataset.id = credential.id;
    cell(row, credential.username);
    cell(row, credential.description);
    cell(row, day(credential.created_at_ms));
    cell(row, credential.revoked_at_ms ? "revoked" : "active").className = "state";
    const actions = cell(row, "");
    if (!credential.revoked_at_ms) {
      const revoke = document.createElement("button");
      revoke.textContent = "Revoke";
      revoke.addEventListener("click", async (e) => {
        e.stopPropagation();
        await api("POST", tenantPath(`/relay/credentials/${credential.id}/revoke`)).catch((err) => status(err.message));
        await loadRelay();
      });
      actions.appendChild(revoke);
    }
    body.appendChild(row);
  }
  const policy = await api("GET", tenantPath("/relay/policy"));
  $("relay-sources").value = policy.allowed_sources.join(", ");
  $("relay-certs").value = policy.client_cert_sha256.join(", ");
  await loadOutboundRelay();
}

async function loadAccounts(more) {
  const query = $("search").value.trim();
  let path = `/accounts?page_size=25`;
  if (query) path += `&query=${encodeURIComponent(query)}`;
  if (more && state.cursor) path += `&cursor=${encodeURIComponent(state.cursor)}`;
  const page = await api("GET", tenantPath(path));
  const body = $("accounts").tBodies[0];
  if (!more) body.replaceChildren();
  for (const account of page.items) {
    const row = document.createElement("tr");
    row.dataset.id = account.id;
    cell(row, account.address);
    cell(row, account.kind);
    cell(row, new Date(account.created_at_ms).toISOString().slice(0, 10));
    row.addEventListener("click", () => openAccount(account).catch((e) => status(e.message)));
    body.appendChild(row);
  }
  state.cursor = page.next_cursor;
  $("more-accounts").hidden = !state.cursor;
  // What the table now shows (a re-render replaces the rows under a click).
  $("accounts").dataset.query = query;
}

async function openAccount(account) {
  state.account = account;
  $("account-title").textContent = account.address;
  $("account-id").textContent = account.id;
  $("verify-form").hidden = true;
  $("preferences-view").hidden = true;
  $("new-device").hidden = true;
  showServerForm(account);
  show("account");
  await loadBindings();
  await loadDeliveries(false);
  await loadCharts();
}

async function loadDeliveries(more) {
  let path = `/accounts/${state.account.id}/deliveries?page_size=20`;
  if (more && state.deliveriesCursor) path += `&cursor=${encodeURIComponent(state.deliveriesCursor)}`;
  const page = await api("GET", tenantPath(path));
  const body = $("deliveries").tBodies[0];
  if (!more) body.replaceChildren();
  for (const entry of page.items) {
    const row = document.createElement("tr");
    cell(row, new Date(entry.at_ms).toISOString().replace("T", " ").slice(0, 19));
    cell(row, entry.device_id);
    cell(row, entry.channel);
    cell(row, entry.status);
    cell(row, entry.detail);
    body.appendChild(row);
  }
  if (!more && page.items.length === 0) {
    const row = document.createElement("tr");
    cell(row, "no deliveries yet").colSpan = 5;
    body.appendChild(row);
  }
  state.deliveriesCursor = page.next_cursor;
  $("more-deliveries").hidden = !state.deliveriesCursor;
}

async function loadBindings() {
  const page = await api("GET", tenantPath(`/accounts/${state.account.id}/bindings`));
  const body = $("bindings").tBodies[0];
  body.replaceChildren();
  for (const binding of page.items) {
    const row = document.createElement("tr");
    row.dataset.id = binding.id;
    cell(row, binding.msisdn);
    cell(row, binding.state).className = "state";
    const devices = cell(row, "");
    const actions = cell(row, "");
    if (binding.state === "verified") {
      const number = encodeURIComponent(binding.msisdn);
      api("GET", tenantPath(`/devices?msisdn=${number}`))
        .then((list) => {
          devices.replaceChildren(...list.items.filter((d) => !d.revoked).map(deviceItem));
        })
        .catch((e) => status(e.message));
      const edit = document.createElement("button");
      edit.textContent = "Preferences";
      edit.addEventListener("click", (e) => {
        e.stopPropagation();
        openPreferences(binding).catch((err) => status(err.message));
      });
      actions.appendChild(edit);
    }
    if (binding.state !== "revoked") {
      const revoke = document.createElement("button");
      revoke.textContent = "Unbind";
      revoke.addEventListener("click", async (e) => {
        e.stopPropagation();
        await api("POST", tenantPath(`/bindings/${binding.id}/revoke`)).catch((err) => status(err.message));
        await loadBindings();
      });
      actions.appendChild(revoke);
    }
    body.appendChild(row);
  }
  fillRegisterForm(page.items);
}

const minutes = (hhmm) => {
  const [h, m] = hhmm.split(":").map(Number);
  return h * 60 + m;
};
const hhmm = (m) => `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

async function openPreferences(binding) {
  const p = await api("GET", tenantPath(`/bindings/${binding.id}/preferences`));
  state.preferences = { binding, current: p };
  $("preferences-number").textContent = binding.msisdn;
  $("pref-level").value = p.content_level;
  $("pref-attachments").checked = p.attachments;
  $("pref-quiet-start").value = p.quiet_hours ? hhmm(p.quiet_hours.start_minute) : "";
  $("pref-quiet-end").value = p.quiet_hours ? hhmm(p.quiet_hours.end_minute) : "";
  $("pref-zone").value = p.quiet_hours ? p.quiet_hours.time_zone : "";
  $("pref-black").value = p.black_list.join(", ");
  $("pref-white").value = p.white_list.join(", ");
  $("preferences-view").hidden = false;
}

async function savePreferences() {
  const { binding, current } = state.preferences;
  const quiet = $("pref-quiet-start").value && $("pref-quiet-end").value
    ? { start_minute: minutes($("pref-quiet-start").value), end_minute: minutes($("pref-quiet-end").value),
        time_zone: $("pref-zone").value.trim() || "UTC" }
    : null;
  const body = {
    content_level: $("pref-level").value,
    max_push_bytes: current.max_push_bytes,
    attachments: $("pref-attachments").checked,
    black_list: list($("pref-black").value),
    white_list: list($("pref-white").value),
    signature: current.signature,
  };
  if (quiet) body.quiet_hours = quiet;
  await api("PUT", tenantPath(`/bindings/${binding.id}/preferences`), body);
  status("Preferences saved.", true);
}

function barChart(title, days, value, unit) {
  const width = 560, height = 120, pad = 20;
  const max = Math.max(1, ...days.map(value));
  const step = (width - pad) / days.length;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 30}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  const label = document.createElementNS(svg.namespaceURI, "text");
  label.setAttribute("x", 0);
  label.setAttribute("y", 10);
  label.textContent = `${title} (max ${max} ${unit})`;
  svg.appendChild(label);
  days.forEach((day, i) => {
    const h = Math.round((value(day) / max) * (height - pad));
    const rect = document.createElementNS(svg.namespaceURI, "rect");
    rect.setAttribute("class", "bar");
    rect.setAttribute("x", pad + i * step);
    rect.setAttribute("y", height - h);
    rect.setAttribute("width", Math.max(1, step - 4));
    rect.setAttribute("height", h);
    rect.dataset.day = day.day;
    rect.dataset.value = value(day);
    svg.appendChild(rect);
    const tick = document.createElementNS(svg.namespaceURI, "text");
    tick.setAttribute("x", pad + i * step);
    tick.setAttribute("y", height + 14);
    tick.textContent = day.day.slice(5);
    svg.appendChild(tick);
  });
  return svg;
}

async function loadCharts() {
  const to = new Date();
  const from = new Date(to.getTime() - 13 * 86400000);
  const day = (d) => d.toISOString().slice(0, 10);
  const data = await api("GET", tenantPath(
    `/traffic?account=${state.account.id}&from=${day(from)}&to=${day(to)}`));
  const byDay = new Map(data.days.map((d) => [d.day, d]));
  const days = [];
  for (let t = from.getTime(); t <= to.getTime(); t += 86400000) {
    const key = day(new Date(t));
    days.push(byDay.get(key) || { day: key, pushed_count: 0, sms_count: 0, fetched_bytes: 0 });
  }
  $("charts").replaceChildren(
    barChart("Pushes per day", days, (d) => d.pushed_count, "pushes"),
    barChart("SMS per day", days, (d) => d.sms_count, "SMS"),
    barChart("Fetched per day", days, (d) => Math.round(d.fetched_bytes / 1024), "KiB"));
}

function on(id, event, handler) {
  $(id).addEventListener(event, (e) => {
    e.preventDefault();
    status("");
    Promise.resolve(handler()).catch((err) => status(err.message));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  on("sign-in-form", "submit", async () => {
    const me = await api("POST", "/api/v1/session", { api_key: $("api-key").value.trim() });
    $("api-key").value = "";
    await signedIn(me);
  });
  on("sign-out", "click", async () => {
    await api("DELETE", "/api/v1/session");
    show("sign-in");
  });
  on("search-form", "submit", () => (state.operator ? loadTenant() : loadAccounts(false)));
  on("create-key-form", "submit", async () => {
    const made = await api("POST", tenantPath("/keys"), { description: $("key-description").value.trim() });
    $("key-description").value = "";
    $("new-key-value").textContent = made.api_key;
    $("new-key").hidden = false;
    status("Key created: copy it now, it is not shown again.", true);
    await loadKeys();
  });
  on("create-relay-form", "submit", async () => {
    const made = await api("POST", tenantPath("/relay/credentials"), { description: $("relay-description").value.trim() });
    $("relay-description").value = "";
    $("new-relay-username").textContent = made.username;
    $("new-relay-password").textContent = made.password;
    $("new-relay").hidden = false;
    status("Relay credential created: copy the password now, it is not shown again.", true);
    await loadRelay();
  });
  on("relay-policy-form", "submit", async () => {
    await api("PUT", tenantPath("/relay/policy"), {
      allowed_sources: list($("relay-sources").value),
      client_cert_sha256: list($("relay-certs").value),
    });
    status("Relay policy saved.", true);
    await loadRelay();
  });
  on("more-accounts", "click", () => loadAccounts(true));
  $("new-kind").addEventListener("change", () => {
    const watched = $("new-kind").value.startsWith("external_");
    $("server-fields").hidden = !watched;
    $("submission-fields").hidden = !watched;
  });
  on("add-account-form", "submit", async () => {
    const body = { address: $("new-address").value.trim(), kind: $("new-kind").value };
    if (body.kind.startsWith("external_")) {
      body.server = { host: $("new-host").value.trim(), port: Number($("new-port").value),
        tls: $("new-tls").value, username: $("new-username").value.trim() };
      body.password = $("new-password").value;
      const submission = submissionFrom("new-submission");
      if (submission) body.submission = submission;
    }
    await api("POST", tenantPath("/accounts"), body);
    $("new-address").value = "";
    $("new-password").value = "";
    $("new-submission-host").value = "";
    status("Account added.", true);
    await loadAccounts(false);
  });
  on("bind-form", "submit", async () => {
    const binding = await api("POST", tenantPath(`/accounts/${state.account.id}/bindings`),
      { msisdn: $("msisdn").value.trim() });
    state.pending = binding;
    $("verify-number").textContent = binding.msisdn;
    $("verify-form").hidden = false;
    $("verify-sms").hidden = !state.smsOutbox;
    await loadBindings();
  });
  on("verify-form", "submit", async () => {
    await api("POST", tenantPath(`/bindings/${state.pending.id}/verify`), { code: $("code").value.trim() });
    $("code").value = "";
    $("verify-form").hidden = true;
    status("Number verified.", true);
    await loadBindings();
  });
  on("preferences-form", "submit", savePreferences);
  on("more-deliveries", "click", () => loadDeliveries(true));
  api("GET", "/api/v1/me").then(signedIn).catch(() => show("sign-in"));
});
