// The campaign and template editors: rows, condition builder, tabs, live preview, test send.
// The form is read back into the same JSON the REST API takes and posted to the builder's
// session-authenticated JSON endpoints (CSRF token in X-CSRFToken). Every text that came
// from data is written with textContent, never innerHTML. No build step, no dependencies.
"use strict";
(() => {
  const root = document.querySelector("[data-editor]");
  if (!root) return;
  const kind = root.dataset.editor; // "campaign" or "template"
  const editable = root.dataset.editable === "true";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (selector, scope = root) => scope.querySelector(selector);
  const $$ = (selector, scope = root) => Array.from(scope.querySelectorAll(selector));
  let dirty = false;

  // ---------------------------------------------------------------- server calls

  async function postJSON(url, payload) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify(payload),
      });
    } catch (error) {
      return { ok: false, status: 0, data: { error: { message: "The server could not be reached. Check your connection and try again." } } };
    }
    let data = null;
    try { data = await response.json(); } catch (error) { data = null; }
    if (!response.ok && !(data && data.error)) {
      const message = response.status === 403 ? "You do not have the rights to do this."
        : response.status === 400 ? "The page has expired: reload it and try again."
          : `The server answered ${response.status}.`;
      data = { error: { message } };
    }
    return { ok: response.ok, status: response.status, data };
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    return response.ok ? response.json() : null;
  }

  function debounce(fn, wait) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), wait); };
  }

  // ---------------------------------------------------------------- tabs

  function selectTab(name) {
    const tabs = $$("[data-tab]");
    if (!tabs.length) { schedulePreview(); return; }
    if (!tabs.some((tab) => tab.dataset.tab === name)) name = tabs.length ? tabs[0].dataset.tab : name;
    for (const tab of tabs) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
    for (const panel of $$("[data-panel]")) panel.hidden = panel.dataset.panel !== name;
    if (history.replaceState) history.replaceState(null, "", `#${name}`);
    // The preview sits beside Content and Test (side by side on wide screens, below on narrow).
    const pane = $("[data-preview-pane]");
    if (pane) {
      pane.hidden = !(name === "test" || name === "content");
      $("[data-editor-body]").classList.toggle("with-preview", !pane.hidden);
    }
    if (name === "test" || name === "content") schedulePreview();
  }

  // ---------------------------------------------------------------- conditional visibility

  function controlValue(name) {
    const selector = name.startsWith("@") ? `[data-when="${name.slice(1)}"]` : `[data-path="${name}"]`;
    for (const el of $$(selector)) {
      if (el.type === "radio") { if (el.checked) return el.value; continue; }
      if (el.type === "checkbox") return el.checked ? "on" : "off";
      return el.value;
    }
    return "";
  }

  function refreshVisibility() {
    for (const el of $$("[data-show-when]")) {
      const [name, values] = el.dataset.showWhen.split("=");
      el.hidden = !values.split("|").includes(controlValue(name));
    }
    for (const row of $$('[data-row="field"]')) {
      const fromVariable = $('[data-key="kind"]', row).value === "source";
      $('[data-cell="source"]', row).hidden = !fromVariable;
      $('[data-cell="value"]', row).hidden = fromVariable;
    }
    for (const leaf of $$("[data-cond-leaf]")) {
      const op = $("[data-cond-op]", leaf).value;
      $("[data-cond-value]", leaf).hidden = op === "exists" || op === "not_exists";
    }
  }

  // Switched off by a choice (auth type, body mode…): such controls are not part of the JSON.
  // A control in a tab that is merely not on screen still is.
  const isShown = (el) => !el.closest("[data-show-when][hidden]");

  // ---------------------------------------------------------------- rows and condition builder

  function cloneTemplate(name) {
    const template = $(`template[data-template="${name}"]`);
    return template.content.firstElementChild.cloneNode(true);
  }

  function addRow(name) {
    const row = cloneTemplate(name);
    $(`[data-rows="${name}"]`).appendChild(row);
    const first = row.querySelector("input, select, textarea");
    if (first) first.focus();
  }

  function addCondition(button) {
    const group = button.closest("[data-cond-group]");
    const node = cloneTemplate(button.dataset.condAdd === "group" ? "cond-group" : "cond-leaf");
    $(":scope > [data-cond-children]", group).appendChild(node);
    const first = node.querySelector("input");
    if (first) first.focus();
  }

  function conditionValue(text, op) {
    if (op === "exists" || op === "not_exists") return undefined;
    if (op === "in" || op === "not_in") {
      return text.split(",").map((part) => part.trim()).filter((part) => part !== "").map(scalar);
    }
    return scalar(text.trim());
  }

  // Numbers, true/false and null are typed as such; "quoted" text stays text.
  function scalar(text) {
    if (text === "") return "";
    try {
      const value = JSON.parse(text);
      if (value === null || ["number", "boolean", "string"].includes(typeof value)) return value;
    } catch (error) { /* plain text */ }
    return text;
  }

  function collectGroup(group, path) {
    // "none of these" is stored as {"not": {"any": [...]}}.
    const choice = $(":scope > .cond-head [data-cond-join]", group).value;
    const join = choice === "none" ? "any" : choice;
    const base = choice === "none" ? `${path}.not` : path;
    const items = [];
    group.dataset.loc = path;
    for (const child of $(":scope > [data-cond-children]", group).children) {
      const at = `${base}.${join}[${items.length}]`;
      if (child.matches("[data-cond-group]")) {
        items.push(collectGroup(child, at));
      } else if (child.matches("[data-cond-leaf]")) {
        const field = $("[data-cond-field]", child);
        const op = $("[data-cond-op]", child);
        const value = $("[data-cond-value]", child);
        child.dataset.loc = at;
        field.dataset.loc = `${at}.field`;
        op.dataset.loc = `${at}.op`;
        value.dataset.loc = `${at}.value`;
        const leaf = { field: field.value.trim(), op: op.value };
        const parsed = conditionValue(value.value, op.value);
        if (parsed !== undefined) leaf.value = parsed;
        items.push(leaf);
      } else if (child.matches("[data-cond-raw]")) {
        child.dataset.loc = at;
        items.push(JSON.parse($("[data-cond-raw-json]", child).value));
      }
    }
    return choice === "none" ? { not: { any: items } } : { [join]: items };
  }

  function collectConditions(loc) {
    const container = $(`[data-conditions][data-loc="${loc}"]`);
    if (!container) return undefined;
    const tree = collectGroup($(":scope > [data-cond-group]", container), loc);
    return (tree.not ? tree.not.any : tree.all || tree.any).length ? tree : undefined;
  }

  // ---------------------------------------------------------------- reading the form into JSON

  function setPath(target, path, value) {
    const parts = path.split(".");
    let node = target;
    for (const part of parts.slice(0, -1)) node = node[part] = node[part] || {};
    node[parts[parts.length - 1]] = value;
  }

  function wholeNumber(text) {
    const trimmed = String(text).trim();
    return /^-?\d+$/.test(trimmed) ? parseInt(trimmed, 10) : trimmed;
  }

  function collectChannel(prefix) {
    const channel = {};
    for (const el of $$(`[data-path^="${prefix}."]`)) {
      if (!isShown(el)) continue;
      if (el.type === "radio" && !el.checked) continue;
      let value = el.type === "checkbox" ? el.checked : el.value;
      if (el.dataset.type === "int") value = wholeNumber(value);
      if (el.dataset.type === "bool") value = value === "true";
      if (el.hasAttribute("data-secret") && value === "") continue; // blank keeps the saved secret
      setPath(channel, el.dataset.path.slice(prefix.length + 1), value);
    }
    channel.headers = $$('[data-rows="header"] > [data-row]').map((row, index) => {
      const at = `${prefix}.headers[${index}]`;
      row.dataset.loc = at;
      for (const input of $$("[data-key]", row)) input.dataset.loc = `${at}.${input.dataset.key}`;
      return { name: $('[data-key="name"]', row).value.trim(), value: $('[data-key="value"]', row).value };
    });
    if (channel.body && channel.body.mode === "mapping") {
      channel.body.fields = $$('[data-rows="field"] > [data-row]').map((row, index) => {
        const at = `${prefix}.body.fields[${index}]`;
        row.dataset.loc = at;
        for (const input of $$("[data-key]", row)) input.dataset.loc = `${at}.${input.dataset.key}`;
        const get = (key) => $(`[data-key="${key}"]`, row).value;
        const field = { name: get("name").trim() };
        if (get("kind") === "source") field.source = get("source").trim();
        else field.value = get("value");
        if (get("fallback") !== "") field.fallback = get("fallback");
        if (get("type")) field.type = get("type");
        return field;
      });
    }
    // "No limit" is a null rate limit; its requests box is hidden then, so not collected.
    if (channel.rate_limit && channel.rate_limit.per === "none") channel.rate_limit = null;
    if (channel.retry && channel.retry.policy === "custom") {
      channel.retry = {
        schedule: $("[data-retry-schedule]").value.split(",").map((s) => s.trim()).filter(Boolean).map(wholeNumber),
        max_attempts: wholeNumber($("[data-retry-max]").value),
      };
    }
    return channel;
  }

  // The picker as a classic cron: "30 9 * * 1,3" (1 = Monday, 0 = Sunday).
  function pickerCron(kind) {
    const [hour, minute] = ($("[data-schedule-time]").value || "09:00").split(":").map((part) => Number(part));
    const at = `${minute || 0} ${hour || 0}`;
    if (kind === "daily") return `${at} * * *`;
    if (kind === "monthly") return `${at} ${$("[data-schedule-monthday]").value || 1} * *`;
    const days = $$("[data-schedule-weekday]").filter((box) => box.checked).map((box) => box.value);
    return `${at} * * ${days.join(",") || "none"}`;
  }

  function collectTrigger() {
    if (controlValue("trigger.type") === "schedule") {
      const trigger = { type: "schedule" };
      const kind = controlValue("@schedule-kind");
      if (kind === "once") {
        const at = $("[data-schedule-at]").value;
        trigger.at = at.length === 16 ? `${at}:00` : at;
      } else if (kind === "advanced") {
        trigger.cron = $("[data-schedule-cron]").value.trim();
      } else {
        trigger.cron = pickerCron(kind);
        $("[data-schedule-cron]").value = trigger.cron; // "advanced" starts from the picked one
      }
      trigger.timezone = $("[data-schedule-timezone]").value.trim() || "UTC";
      return trigger;
    }
    const events = $$("[data-event-name]").filter((box) => box.checked).map((box) => box.value);
    for (const line of $("[data-event-patterns]").value.split("\n")) {
      if (line.trim() && !events.includes(line.trim())) events.push(line.trim());
    }
    const trigger = { type: "event", events };
    const conditions = collectConditions("trigger.conditions");
    if (conditions) trigger.conditions = conditions;
    return trigger;
  }

  function collectCampaign() {
    const trigger = collectTrigger();
    const audience = {
      test_contacts: $("[data-test-contacts]").value.split(",").map((s) => s.trim()).filter(Boolean),
    };
    if (trigger.type === "schedule") {
      const conditions = collectConditions("audience.conditions");
      if (conditions) audience.conditions = conditions;
    }
    let cap = null;
    if ($("[data-cap-enabled]").checked) {
      const per = wholeNumber($("[data-cap-per]").value);
      const unit = parseInt($("[data-cap-unit]").value, 10);
      cap = { max: wholeNumber($("[data-cap-max]").value), per_seconds: Number.isInteger(per) ? per * unit : per };
    }
    return {
      name: $('[data-path="name"]').value,
      trigger,
      audience,
      frequency_cap: cap,
      webhook: collectChannel("webhook"),
    };
  }

  function collectTemplate() {
    return {
      name: $('[data-path="name"]').value,
      description: $('[data-path="description"]').value,
      webhook: collectChannel("webhook"),
    };
  }

  const collect = () => (kind === "campaign" ? collectCampaign() : collectTemplate());

  // ---------------------------------------------------------------- messages beside fields

  function clearErrors() {
    for (const el of $$(".field-error[data-error-for]")) el.remove();
    for (const el of $$("[aria-invalid]")) el.removeAttribute("aria-invalid");
    for (const tab of $$("[data-tab]")) tab.classList.remove("has-error");
    const box = $("[data-errors-box]");
    box.hidden = true;
    box.textContent = "";
  }

  function findTarget(location) {
    let loc = location;
    while (loc) {
      const escaped = CSS.escape(loc);
      const candidates = $$(`[data-loc="${escaped}"], [data-path="${escaped}"]`).filter(isShown);
      if (candidates.length) return candidates[0];
      const cut = Math.max(loc.lastIndexOf("."), loc.lastIndexOf("["));
      if (cut <= 0) break;
      loc = loc.slice(0, cut);
    }
    return null;
  }

  function placeMessage(target, location, text, cls) {
    const message = document.createElement("p");
    message.className = cls;
    message.dataset.errorFor = location;
    message.textContent = text;
    if (target.matches("input, select, textarea")) {
      if (cls === "field-error") target.setAttribute("aria-invalid", "true");
      const row = target.closest("[data-row], [data-cond-leaf]");
      (row || target).insertAdjacentElement("afterend", message);
    } else if (target.matches("[data-row], [data-cond-leaf], [data-cond-raw]")) {
      target.insertAdjacentElement("afterend", message);
    } else {
      target.appendChild(message);
    }
    const panel = target.closest("[data-panel]");
    if (panel && cls === "field-error") {
      const tab = $(`[data-tab="${panel.dataset.panel}"]`);
      if (tab) tab.classList.add("has-error");
    }
    return panel;
  }

  // Every problem beside its field (tabs with one get a marker) and listed in words above.
  function showErrors(error, { switchTab = true } = {}) {
    const details = (error && error.details) || {};
    const labels = (error && error.labels) || {};
    const box = $("[data-errors-box]");
    const heading = document.createElement("p");
    heading.textContent = (error && error.message) || "Not saved.";
    box.appendChild(heading);
    const list = document.createElement("ul");
    let firstPanel = null;
    for (const [location, messages] of Object.entries(details)) {
      for (const text of [].concat(messages)) {
        const target = findTarget(location);
        const panel = target ? placeMessage(target, location, text, "field-error") : null;
        firstPanel = firstPanel || panel;
        const item = document.createElement("li");
        const where = labels[location] || (location && location !== "_schema" ? location : "");
        item.textContent = where ? `${where}: ${text}` : text;
        list.appendChild(item);
      }
    }
    box.appendChild(list);
    box.hidden = false;
    if (firstPanel && switchTab) selectTab(firstPanel.dataset.panel);
  }

  // While problems are shown, each edit asks the server again (nothing is saved), so a
  // message goes away as soon as its field is right, and stays while it is not.
  let checking = null; // null, or {activate: bool} once problems were shown
  async function recheck() {
    if (!checking || !root.dataset.checkUrl) return;
    const url = root.dataset.checkUrl + (checking.activate ? "?activate=1" : "");
    const result = await postJSON(url, collect());
    if (!result.ok || !checking) return;
    const details = result.data.details || {};
    clearErrors();
    const count = Object.values(details).reduce((n, list) => n + list.length, 0);
    if (!count) { checking = null; return; }
    const things = count === 1 ? "1 thing" : `${count} things`;
    const message = checking.activate ? `Not activated yet: ${things} to finish.` : `Not saved: ${things} to fix.`;
    showErrors({ message, details, labels: result.data.labels }, { switchTab: false });
  }
  const scheduleRecheck = debounce(recheck, 400);

  // Each warning is shown once: beside its field when the Content tab has one, else listed
  // under the body.
  function showWarnings(warnings) {
    for (const el of $$(".field-warning[data-error-for]")) el.remove();
    const list = $("[data-warnings]");
    if (!list) return;
    list.textContent = "";
    for (const warning of warnings || []) {
      const target = warning.location && findTarget(warning.location);
      if (target && target.closest('[data-panel="content"]')) {
        placeMessage(target, warning.location, `⚠ ${warning.message}`, "field-warning");
        continue;
      }
      const item = document.createElement("li");
      const where = warning.label || warning.location;
      item.textContent = where ? `${where}: ${warning.message}` : warning.message;
      list.appendChild(item);
    }
  }

  function setSaveState(text) {
    const state = $("[data-save-state]");
    if (state) state.textContent = text;
  }

  function markDirty() {
    if (!editable) return;
    dirty = true;
    setSaveState("Unsaved changes");
  }

  // ---------------------------------------------------------------- save

  async function save() {
    clearErrors();
    setSaveState("Saving…");
    const result = await postJSON(root.dataset.saveUrl, collect());
    if (!result.ok) {
      showErrors(result.data.error);
      if (result.status === 422) checking = { activate: false };
      setSaveState("Not saved: see the messages");
      return false;
    }
    if (checking && !checking.activate) checking = null;
    dirty = false;
    setSaveState("Saved");
    for (const input of $$("[data-secret]")) {
      if (input.value) input.placeholder = "leave blank to keep";
      input.value = "";
    }
    const title = $('[data-testid="campaign-title"], [data-testid="template-title"]');
    if (title && result.data.name) title.textContent = result.data.name;
    showWarnings(result.data.warnings);
    showRetryBanner(result.data.waiting_to_retry);
    return true;
  }

  // After a save: offer to rebuild the notifications still waiting to retry.
  function showRetryBanner(count) {
    const banner = $("[data-retry-banner]");
    if (!banner || typeof count !== "number") return;
    banner.hidden = count === 0;
    for (const el of $$("[data-retry-count]", banner)) el.textContent = String(count);
    for (const el of $$("[data-retry-noun]", banner)) el.textContent = count === 1 ? "notification" : "notifications";
    for (const el of $$("[data-retry-verb]", banner)) el.textContent = count === 1 ? "is" : "are";
  }

  // ---------------------------------------------------------------- preview and test data

  function parseJSONField(selector, what) {
    const el = $(selector);
    try {
      return JSON.parse(el.value || "{}");
    } catch (error) {
      throw new Error(`The ${what} is not valid JSON: ${error.message}`);
    }
  }

  function testData() {
    const data = {};
    if (kind === "campaign" && controlValue("@test-source") === "contact") {
      const chosen = $("[data-test-contact]").value;
      if (chosen) data.contact = { external_id: chosen };
    } else {
      data.contact = parseJSONField("[data-sample-contact]", "sample contact");
    }
    if (kind === "template" || controlValue("trigger.type") !== "schedule") {
      data.event = {
        name: $("[data-sample-event-name]").value.trim(),
        properties: parseJSONField("[data-sample-event-properties]", "event properties"),
      };
    }
    return data;
  }

  let previewSequence = 0;

  async function preview() {
    const box = $("[data-preview]");
    if (!box) return;
    const sequence = ++previewSequence;
    const problem = $("[data-preview-error]");
    const state = $("[data-preview-state]");
    let payload;
    try {
      payload = { webhook: collectChannel("webhook"), ...testData() };
    } catch (error) {
      problem.textContent = error.message;
      problem.hidden = false;
      return;
    }
    showPreviewSubject(payload);
    state.textContent = "updating…";
    const result = await postJSON(root.dataset.previewUrl, payload);
    if (sequence !== previewSequence) return; // a newer preview is on its way
    state.textContent = "";
    problem.textContent = "";
    for (const el of $$(".preview-problem")) el.remove();
    if (!result.ok) {
      // Say why beside the field that causes it (and once here, in words); keep the
      // warnings about other fields.
      const error = result.data.error || {};
      const labels = error.labels || {};
      const heading = document.createElement("p");
      heading.textContent = error.message || "The request cannot be rendered.";
      problem.appendChild(heading);
      for (const [location, messages] of Object.entries(error.details || {})) {
        const text = [].concat(messages).join(" ");
        const line = document.createElement("p");
        const where = labels[location] || (location !== "_schema" ? location : "");
        line.textContent = where ? `${where}: ${text}` : text;
        problem.appendChild(line);
        const target = location && findTarget(location);
        if (target && target.closest('[data-panel="content"]')) {
          placeMessage(target, location, text, "field-error preview-problem");
        }
      }
      problem.hidden = false;
      box.classList.add("stale");
      if (error.warnings) showWarnings(error.warnings);
      return;
    }
    problem.hidden = true;
    box.classList.remove("stale");
    const request = result.data.request;
    $("[data-preview-method]").textContent = request.method;
    $("[data-preview-url]").textContent = request.url;
    const headers = $("[data-preview-headers]");
    fillHeaders(headers, request.headers.map((h) => [h.name, h.value]));
    addSendTimeHeaders(headers, result.data.send_time_headers || []);
    $("[data-preview-body]").textContent = prettyBody(request.body);
    showWarnings(result.data.warnings);
  }

  const schedulePreview = debounce(preview, 350);

  // The preview pane's "Preview with" mirrors the Test tab's choice, and sets it.
  function showPreviewSubject(payload) {
    const chooser = $("[data-preview-with]");
    if (!chooser) return;
    const contact = payload.contact && payload.contact.attributes === undefined ? payload.contact.external_id : "";
    if (contact && !Array.from(chooser.options).some((o) => o.value === contact)) {
      chooser.add(new Option(`contact ${contact}`, contact));
    }
    chooser.value = contact || "";
  }

  function previewWith(externalId) {
    for (const radio of $$("[data-test-source]")) radio.checked = radio.value === (externalId ? "contact" : "sample");
    if (externalId) pickContact(externalId);
    refreshVisibility();
    schedulePreview();
  }

  function prettyBody(text) {
    if (!text) return "(no body)";
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (error) { return text; }
  }

  function fillHeaders(tbody, pairs) {
    tbody.textContent = "";
    for (const [name, value] of pairs) {
      const row = tbody.insertRow();
      row.insertCell().textContent = name;
      row.insertCell().textContent = value;
    }
  }

  // The Standard Webhooks headers are not part of the rendered request: the sender adds
  // them to every attempt. The preview lists them apart, marked as such.
  function addSendTimeHeaders(tbody, headers) {
    if (!headers.length) return;
    const heading = tbody.insertRow();
    heading.className = "send-time-heading";
    const cell = heading.insertCell();
    cell.colSpan = 2;
    cell.textContent = "Added at send time (Standard Webhooks): webhook-id is the notification's id; each attempt gets its own timestamp and signature.";
    for (const header of headers) {
      const row = tbody.insertRow();
      row.className = "send-time";
      row.dataset.sendTime = "";
      row.insertCell().textContent = header.name;
      const value = row.insertCell();
      value.textContent = header.value;
      const tag = document.createElement("span");
      tag.className = "send-time-tag";
      tag.textContent = "added at send time";
      value.append(" ", tag);
    }
  }

  // ---------------------------------------------------------------- test send

  async function testSend(button) {
    if (dirty && !(await save())) return;
    let payload;
    try { payload = testData(); } catch (error) { window.alert(error.message); return; }
    if (!payload.contact) {
      window.alert("Choose a test contact (or search for one), or switch to sample data.");
      return;
    }
    const section = $("[data-test-result]");
    const badge = $("[data-result-badge]");
    const summary = $("[data-result-summary]");
    button.disabled = true;
    section.hidden = false;
    badge.className = "badge";
    badge.textContent = "sending";
    summary.textContent = "Sending the request…";
    fillHeaders($("[data-result-headers]"), []);
    $("[data-result-body]").textContent = "";
    $("[data-result-link]").textContent = "";
    const result = await postJSON(root.dataset.testUrl, payload);
    button.disabled = false;
    const data = result.data || {};
    const response = data.response;
    if (result.ok && response) {
      const good = response.status_code >= 200 && response.status_code < 300;
      badge.className = `badge ${good ? "badge-delivered" : "badge-failed"}`;
      badge.textContent = String(response.status_code);
      summary.textContent = `${good ? "Delivered" : "The endpoint answered with an error"}: HTTP ${response.status_code} in ${response.duration_ms} ms`;
      const headers = response.headers || {};
      fillHeaders($("[data-result-headers]"), Array.isArray(headers) ? headers.map((h) => [h.name, h.value]) : Object.entries(headers));
      $("[data-result-body]").textContent = prettyBody(response.body || "");
    } else {
      const error = data.error || {};
      badge.className = "badge badge-failed";
      badge.textContent = "not sent";
      const where = Object.entries(error.details || {}).map(([location, messages]) => `${(error.labels || {})[location] || location}: ${[].concat(messages).join(" ")}`);
      summary.textContent = [error.message || "The test could not be sent.", ...where].join(" — ");
    }
    if (data.notification_id) {
      $("[data-result-link]").textContent = `Logged as test notification ${data.notification_id}.`;
    }
  }

  // ---------------------------------------------------------------- schedule, audience, contacts

  const refreshSchedule = debounce(async () => {
    const target = $("[data-schedule-preview]");
    if (!target || controlValue("trigger.type") !== "schedule") return;
    if (controlValue("@schedule-kind") === "weekly" && !$$("[data-schedule-weekday]").some((box) => box.checked)) {
      target.classList.add("field-error");
      target.textContent = "Choose at least one day of the week.";
      return;
    }
    const result = await postJSON(root.dataset.scheduleUrl, { trigger: collectTrigger() });
    const data = result.data || {};
    target.classList.toggle("field-error", !result.ok);
    if (!result.ok) {
      const details = (data.error && data.error.details) || {};
      target.textContent = Object.values(details).flat().join(" ") || data.error.message;
    } else {
      target.textContent = data.next_fire_time ? `${data.description} · next: ${data.next_fire_local}` : `${data.description} · no further fire time`;
    }
  }, 300);

  const refreshEstimate = debounce(async () => {
    const target = $("[data-audience-estimate]");
    if (!target || controlValue("trigger.type") !== "schedule") return;
    let conditions;
    try { conditions = collectConditions("audience.conditions"); } catch (error) { return; }
    const result = await postJSON(root.dataset.estimateUrl, { conditions: conditions || null });
    const data = result.data || {};
    target.textContent = result.ok ? data.text : (data.error && data.error.message) || "";
  }, 500);

  const searchContacts = debounce(async (text) => {
    const list = $("[data-contact-results]");
    list.textContent = "";
    if (!text.trim()) return;
    const data = await getJSON(`${root.dataset.contactsUrl}?q=${encodeURIComponent(text.trim())}`);
    for (const contact of (data && data.data) || []) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link";
      button.dataset.pickContact = contact.external_id;
      button.textContent = contact.label;
      item.appendChild(button);
      list.appendChild(item);
    }
    if (!list.children.length) {
      const item = document.createElement("li");
      item.className = "muted";
      item.textContent = "No contact starts with that id.";
      list.appendChild(item);
    }
  }, 250);

  function pickContact(externalId) {
    const select = $("[data-test-contact]");
    let option = Array.from(select.options).find((o) => o.value === externalId);
    if (!option) {
      option = new Option(externalId, externalId);
      select.add(option);
    }
    select.value = externalId;
    $("[data-contact-results]").textContent = "";
    schedulePreview();
  }

  // ---------------------------------------------------------------- secret rotation, templates

  async function rotateSecret(button) {
    if (!window.confirm(button.dataset.confirmText)) return;
    const result = await postJSON(button.dataset.url, {});
    const box = $("[data-rotated-secret]");
    if (result.ok) {
      $("[data-rotated-secret-value]").textContent = result.data.secret;
      box.hidden = false;
      box.scrollIntoView({ block: "nearest" });
    } else {
      window.alert(result.data.error.message);
    }
  }

  async function saveAsTemplate(button) {
    const errorLine = $("[data-template-error]");
    errorLine.textContent = "";
    if (dirty && !(await save())) {
      errorLine.textContent = "Fix the campaign's problems first: it must be saved before it becomes a template.";
      return;
    }
    const result = await postJSON(button.dataset.url, {
      name: $("[data-template-name]").value,
      description: $("[data-template-description]").value,
    });
    if (!result.ok) {
      const details = result.data.error.details || {};
      errorLine.textContent = Object.values(details).flat().join(" ") || result.data.error.message;
      return;
    }
    button.closest("dialog").close();
    setSaveState(`Saved as template “${result.data.name}”`);
  }

  // ---------------------------------------------------------------- wiring

  root.addEventListener("click", (event) => {
    const target = event.target.closest("button, [data-goto-tab]");
    if (!target) return;
    if (target.dataset.tab) selectTab(target.dataset.tab);
    else if (target.dataset.addRow) { addRow(target.dataset.addRow); markDirty(); schedulePreview(); scheduleRecheck(); }
    else if (target.hasAttribute("data-remove-row")) { target.closest("[data-row]").remove(); markDirty(); schedulePreview(); scheduleRecheck(); }
    else if (target.dataset.condAdd) { addCondition(target); markDirty(); }
    else if (target.hasAttribute("data-cond-remove")) {
      target.closest("[data-cond-group], [data-cond-leaf], [data-cond-raw]").remove();
      markDirty();
      refreshEstimate();
    }
    else if (target.hasAttribute("data-save")) save();
    else if (target.hasAttribute("data-test-send")) testSend(target);
    else if (target.hasAttribute("data-rotate-secret")) rotateSecret(target);
    else if (target.dataset.openDialog) $(`dialog[data-dialog="${target.dataset.openDialog}"]`).showModal();
    else if (target.hasAttribute("data-close-dialog")) target.closest("dialog").close();
    else if (target.hasAttribute("data-save-template")) saveAsTemplate(target);
    else if (target.dataset.pickContact) pickContact(target.dataset.pickContact);
    else if (target.dataset.gotoTab) { event.preventDefault(); selectTab(target.dataset.gotoTab); }
    else return;
    refreshVisibility();
  });

  function onEdit(event) {
    const el = event.target;
    if (el.closest("dialog")) return;
    if (el.matches("[data-contact-search]")) { searchContacts(el.value); return; }
    refreshVisibility();
    if (el.closest(".editor-fields")) { markDirty(); scheduleRecheck(); }
    if (el.closest('[data-panel="content"], [data-panel="test"]')) schedulePreview();
    if (el.closest('[data-panel="setup"]')) {
      refreshSchedule();
      refreshEstimate();
      if (el.matches('[data-path="trigger.type"]')) schedulePreview();
    }
  }
  root.addEventListener("change", (event) => {
    if (event.target.matches("[data-preview-with]")) previewWith(event.target.value);
  });
  root.addEventListener("input", onEdit);
  root.addEventListener("change", onEdit);

  // A lifecycle button (activate, pause…) saves pending edits first, then submits.
  // Activating first asks what is missing, and shows each beside its field.
  async function checkActivation() {
    if (!root.dataset.checkUrl) return true;
    const result = await postJSON(root.dataset.checkUrl + "?activate=1", collect());
    const details = (result.ok && result.data.details) || {};
    const count = Object.values(details).reduce((n, list) => n + list.length, 0);
    if (result.ok && !count) return true;
    clearErrors();
    if (!result.ok) { showErrors(result.data.error); return false; }
    const things = count === 1 ? "1 thing" : `${count} things`;
    showErrors({ message: `Not activated yet: ${things} to finish.`, details, labels: result.data.labels });
    checking = { activate: true };
    setSaveState("");
    return false;
  }

  for (const form of $$("form")) {
    form.addEventListener("submit", async (event) => {
      if (event.defaultPrevented) return;
      const activating = form.action.endsWith("/activate");
      if (!dirty && !activating) return;
      event.preventDefault();
      if (dirty && !(await save())) return;
      if (activating && !(await checkActivation())) return;
      form.submit();
    });
  }

  window.addEventListener("beforeunload", (event) => {
    if (dirty) { event.preventDefault(); event.returnValue = ""; }
  });

  refreshVisibility();
  selectTab((location.hash || "#setup").slice(1));
  refreshSchedule();
  refreshEstimate();
  schedulePreview();
})();
