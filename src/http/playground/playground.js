// tessera API Playground: plain JavaScript, no build step, no outside
// assets. Everything the server sends back is shown with textContent, never
// as HTML. The session lives in this page's memory only.
"use strict";

const state = { jwt: null, csrf: null, datasources: [] };
const $ = (id) => document.getElementById(id);

const TEXT = ["String", "Email", "Phone", "URL", "UserID", "YN"];
const NUMBER = ["Integer", "Decimal", "Double", "Percent"];
const DATE = ["Date", "DateTime"];
const OPERATORS = {
  text: ["is", "not", "like", "nct", "sw", "ew", "in", "nin", "empty", "notEmpty", "null", "notNull"],
  number: ["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "bn", "null", "notNull"],
  date: ["on", "after", "before", "onOrAfter", "onOrBefore", "bn", "null", "notNull"],
  boolean: ["is", "not", "empty", "notEmpty"],
};
const NO_VALUE = ["empty", "notEmpty", "null", "notNull"];
const LISTS = ["in", "nin", "bn"];

function family(type) {
  if (TEXT.includes(type)) return "text";
  if (NUMBER.includes(type)) return "number";
  if (DATE.includes(type)) return "date";
  return "boolean";
}

// base64 of the UTF-8 bytes, as the Token header wants it.
function base64(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

// Calls the server; resolves to the JSON body, or throws with the server's
// own error title and message.
async function call(method, path, { headers = {}, body } = {}) {
  const response = await fetch(path, { method, headers, body, credentials: "omit", cache: "no-store" });
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!response.ok) {
    const detail = json && json.message ? `${json.title}: ${json.message}` : text || response.statusText;
    throw new Error(`${response.status} ${detail}`);
  }
  return json;
}

function sessionHeaders() {
  return { Authorization: `Bearer ${state.jwt}`, "X-CSRF-Token": state.csrf };
}

async function signIn(event) {
  event.preventDefault();
  showError("");
  try {
    const user = $("user").value;
    const signedIn = await call("POST", "/v1/auth", {
      headers: { Authorization: `Token ${base64(`${user}:${$("password").value}`)}`, "Content-Type": "application/json" },
      body: "{}",
    });
    $("password").value = "";
    state.jwt = signedIn.jwt;
    state.csrf = signedIn.csrf;
    await loadSession();
  } catch (e) {
    showError(e.message);
  }
}

async function loadSession() {
  const status = await call("GET", "/v1/status", { headers: sessionHeaders() });
  $("s-user").textContent = status.userName;
  $("s-org").textContent = status.orgUid;
  $("s-roles").textContent = status.roles.join(", ") || "(none)";
  $("s-expires").textContent = `${status.expiresAt} (idle: ${status.idleExpiresAt})`;
  const listed = await call("GET", "/v1/datasources", { headers: sessionHeaders() });
  state.datasources = listed.datasources.filter((ds) => ds.operations.includes("query"));
  const picker = $("datasource");
  picker.replaceChildren(...state.datasources.map((ds) => new Option(ds.name, ds.name)));
  pickDatasource();
  $("signin-panel").hidden = true;
  $("session-panel").hidden = false;
  $("query-panel").hidden = false;
}

async function signOut() {
  showError("");
  try {
    await call("POST", "/v1/signout", { headers: sessionHeaders() });
  } catch (e) {
    showError(e.message);
  }
  state.jwt = state.csrf = null;
  $("signin-panel").hidden = false;
  for (const id of ["session-panel", "query-panel", "result-panel"]) $(id).hidden = true;
}

function currentDatasource() {
  return state.datasources.find((ds) => ds.name === $("datasource").value);
}

function pickDatasource() {
  const ds = currentDatasource();
  const attrs = ds ? ds.attributes : [];
  $("h-attr").replaceChildren(...attrs.map((a) => new Option(`${a.code} (${a.type})`, a.code)));
  pickAttribute();
}

function pickAttribute() {
  const ds = currentDatasource();
  const attr = ds && ds.attributes.find((a) => a.code === $("h-attr").value);
  const ops = attr ? OPERATORS[family(attr.type)] : [];
  $("h-op").replaceChildren(...ops.map((op) => new Option(op, op)));
}

function helperValue(attr, op, raw) {
  if (NO_VALUE.includes(op)) return true;
  const one = (text) => {
    const t = text.trim();
    if (NUMBER.includes(attr.type)) return Number(t);
    if (attr.type === "Boolean") return t === "true";
    return t;
  };
  return LISTS.includes(op) ? raw.split(",").map(one) : one(raw);
}

function addCondition() {
  showError("");
  const ds = currentDatasource();
  const attr = ds && ds.attributes.find((a) => a.code === $("h-attr").value);
  if (!attr) return;
  let filter;
  try {
    filter = JSON.parse($("filter").value || "[]");
  } catch (e) {
    showError(`The filter is not valid JSON: ${e.message}`);
    return;
  }
  if (!Array.isArray(filter)) filter = filter === null ? [] : [filter];
  const op = $("h-op").value;
  filter.push({ [attr.code]: { [op]: helperValue(attr, op, $("h-value").value) } });
  $("filter").value = JSON.stringify(filter, null, 1);
}

// A shell word: single quotes, with any ' closed, escaped and reopened.
function shellQuote(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

function curlLine(body) {
  const url = `${location.origin}/v1/api?csrf=${encodeURIComponent(state.csrf)}`;
  return ["curl -s -X POST", shellQuote(url), "-H", shellQuote(`Authorization: Bearer ${state.jwt}`),
    "-H", shellQuote("Content-Type: application/json"), "-d", shellQuote(body)].join(" ");
}

function cellText(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function render(ds, result) {
  const rows = result.data || [];
  const columns = ds.attributes.map((a) => a.code).filter((c) => rows.some((r) => c in r));
  const head = document.createElement("tr");
  for (const column of columns) {
    const th = document.createElement("th");
    th.textContent = column;
    head.append(th);
  }
  const body = rows.map((row) => {
    const tr = document.createElement("tr");
    for (const column of columns) {
      const td = document.createElement("td");
      td.textContent = cellText(row[column]);
      tr.append(td);
    }
    return tr;
  });
  $("rows").tHead.replaceChildren(head);
  $("rows").tBodies[0].replaceChildren(...body);
  $("summary").textContent = `${result.rowsFetched} rows · queryElapsed ${result.queryElapsed} ms`;
}

async function run(event) {
  event.preventDefault();
  showError("");
  const ds = currentDatasource();
  if (!ds) {
    showError("Your roles grant no datasource that may be queried.");
    return;
  }
  let filter;
  try {
    filter = JSON.parse($("filter").value || "[]");
  } catch (e) {
    showError(`The filter is not valid JSON: ${e.message}`);
    return;
  }
  const body = JSON.stringify({ q: { ds: ds.name, query: { filter, limit: Number($("limit").value) } } });
  $("curl").textContent = curlLine(body);
  $("result-panel").hidden = false;
  try {
    const answer = await call("POST", "/v1/api", {
      headers: { ...sessionHeaders(), "Content-Type": "application/json" }, body,
    });
    render(ds, answer.data.q);
  } catch (e) {
    $("rows").tHead.replaceChildren();
    $("rows").tBodies[0].replaceChildren();
    $("summary").textContent = "";
    showError(e.message);
  }
}

async function copyCurl() {
  const text = $("curl").textContent;
  try {
    await navigator.clipboard.writeText(text);
    $("copy").textContent = "Copied";
  } catch (_) {
    const range = document.createRange();
    range.selectNodeContents($("curl"));
    const selection = getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    $("copy").textContent = "Selected: press Ctrl+C";
  }
  setTimeout(() => { $("copy").textContent = "Copy curl line"; }, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("datasource").addEventListener("change", pickDatasource);
  $("h-attr").addEventListener("change", pickAttribute);
  $("h-add").addEventListener("click", addCondition);
  $("h-clear").addEventListener("click", () => { $("filter").value = "[]"; });
  $("query-form").addEventListener("submit", run);
  $("copy").addEventListener("click", copyCurl);
});
