// The Debug tab: an MCP client in the page, speaking Streamable HTTP to the server's live gateway endpoint.
(function () {
  "use strict";

  const root = document.getElementById("debug");
  if (!root) return;
  const endpoint = root.dataset.endpoint;
  const PROTOCOL = "2025-11-25";
  const $ = (id) => document.getElementById(id);
  const state = { session: null, protocol: null, nextId: 1, tools: [], current: null, credential: null };
  // With Consumer Authentication on, every request carries the chosen consumer's credential where the server reads it.
  const authSource = root.dataset.authSource || "";
  const authName = root.dataset.authName || "";

  function withCredential(headers) {
    let url = endpoint;
    if (!state.credential) return url;
    if (authSource === "bearer") headers["Authorization"] = "Bearer " + state.credential;
    else if (authSource === "header") headers[authName] = state.credential;
    else if (authSource === "query") {
      url += (url.includes("?") ? "&" : "?") + encodeURIComponent(authName) + "=" + encodeURIComponent(state.credential);
    }
    return url;
  }

  function setStatus(text, isError) {
    const el = $("debug-status");
    el.textContent = text;
    el.style.color = isError ? "var(--danger)" : "";
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

  // A POST answer is JSON or an SSE stream carrying the JSON-RPC response; both end with the response.
  async function readAnswer(response, id) {
    const type = response.headers.get("Content-Type") || "";
    const text = await response.text();
    if (!type.includes("text/event-stream")) return text ? JSON.parse(text) : null;
    let found = null;
    for (const block of text.split(/\r?\n\r?\n/)) {
      const data = block.split(/\r?\n/).filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, "")).join("\n");
      if (!data) continue;
      try {
        const message = JSON.parse(data);
        if (message && message.id === id && ("result" in message || "error" in message)) found = message;
      } catch (e) { /* a keep-alive or partial event */ }
    }
    return found;
  }

  async function post(body) {
    const headers = { "Content-Type": "application/json", "Accept": "application/json, text/event-stream" };
    if (state.session) headers["Mcp-Session-Id"] = state.session;
    if (state.protocol) headers["MCP-Protocol-Version"] = state.protocol;
    const url = withCredential(headers);
    return fetch(url, { method: "POST", headers, body: JSON.stringify(body), credentials: "omit" });
  }

  async function rpc(method, params) {
    const id = state.nextId++;
    const request = { jsonrpc: "2.0", id, method, params: params || {} };
    const started = performance.now();
    let response = await post(request);
    if (response.status === 404 && state.session && method !== "initialize") {
      // The session ended (idle timeout or a restart): start a new one and try once more.
      state.session = null;
      await initialize();
      response = await post(request);
    }
    const message = await readAnswer(response, id).catch(() => null);
    const latency = Math.round(performance.now() - started);
    if (response.status === 401 || response.status === 403) {
      // The gateway's answer says how to send the credential (401) or that this consumer may not (403).
      const said = message && message.error ? ": " + message.error.message : "";
      const error = new Error(`HTTP ${response.status}${said}` + (response.status === 401
        ? " Choose a consumer or paste a key above." : ""));
      error.request = request;
      throw error;
    }
    if (!response.ok && !message) {
      const error = new Error(`HTTP ${response.status} from ${endpoint}` +
        (response.status === 404 ? " (is the server enabled?)" : ""));
      error.request = request;
      throw error;
    }
    return { request, message, latency, response };
  }

  async function initialize() {
    state.protocol = null;
    const exchange = await rpc("initialize", {
      protocolVersion: PROTOCOL,
      capabilities: {},
      clientInfo: { name: "mcp-gateway-console-debug", version: "1.0" },
    });
    if (!exchange.message || exchange.message.error) {
      throw new Error("initialize failed: " + pretty(exchange.message && exchange.message.error));
    }
    state.session = exchange.response.headers.get("Mcp-Session-Id");
    state.protocol = exchange.message.result.protocolVersion || PROTOCOL;
    await post({ jsonrpc: "2.0", method: "notifications/initialized" });
    return exchange;
  }

  async function connect() {
    const button = $("debug-connect");
    button.disabled = true;
    setStatus("Connecting…");
    try {
      const init = await initialize();
      const info = init.message.result.serverInfo || {};
      const tools = [];
      let cursor;
      let latency = 0;
      do {
        const page = await rpc("tools/list", cursor ? { cursor } : {});
        latency += page.latency;
        if (page.message.error) throw new Error("tools/list failed: " + page.message.error.message);
        tools.push(...(page.message.result.tools || []));
        cursor = page.message.result.nextCursor;
      } while (cursor);
      state.tools = tools;
      renderTools();
      setStatus(`Connected to ${info.name || "server"} (MCP ${state.protocol}); tools/list took ${latency} ms.`);
      button.textContent = "Reconnect";
      const wanted = root.dataset.preselect;
      if (wanted && tools.some((t) => t.name === wanted)) selectTool(wanted);
    } catch (error) {
      setStatus(error.message, true);
    } finally {
      button.disabled = false;
    }
  }

  function renderTools() {
    const list = $("debug-tools");
    list.innerHTML = "";
    $("debug-tool-count").textContent = `(${state.tools.length})`;
    if (!state.tools.length) {
      list.innerHTML = '<li class="help">The server lists no tools (are they all disabled?).</li>';
      return;
    }
    for (const tool of state.tools) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.tool = tool.name;
      button.setAttribute("aria-pressed", "false");
      const name = document.createElement("strong");
      name.textContent = tool.name;
      const desc = document.createElement("small");
      desc.textContent = tool.description || "";
      button.append(name, desc);
      button.addEventListener("click", () => selectTool(tool.name));
      item.append(button);
      list.append(item);
    }
  }

  function field(name, schema, required) {
    const wrap = document.createElement("div");
    wrap.className = "field";
    const id = "arg-" + name;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = name + (required ? " *" : "");
    let input;
    const type = Array.isArray(schema.type) ? schema.type[0] : (schema.type || "string");
    if (Array.isArray(schema.enum)) {
      input = document.createElement("select");
      if (!required) input.append(new Option("—", ""));
      schema.enum.forEach((value) => input.append(new Option(String(value), JSON.stringify(value))));
      if (schema.default !== undefined) input.value = JSON.stringify(schema.default);
    } else if (type === "boolean") {
      input = document.createElement("select");
      if (!required) input.append(new Option("—", ""));
      input.append(new Option("true", "true"), new Option("false", "false"));
      if (schema.default !== undefined) input.value = String(schema.default);
    } else if (type === "object" || type === "array") {
      input = document.createElement("textarea");
      input.rows = 3;
      input.className = "mono";
      input.placeholder = type === "array" ? "[ … ] as JSON" : "{ … } as JSON";
      if (schema.default !== undefined) input.value = JSON.stringify(schema.default);
    } else {
      input = document.createElement("input");
      input.type = type === "integer" || type === "number" ? "number" : "text";
      if (type === "number") input.step = "any";
      if (schema.default !== undefined) input.value = String(schema.default);
    }
    input.id = id;
    input.name = name;
    input.dataset.type = type;
    input.dataset.enum = Array.isArray(schema.enum) ? "1" : "";
    if (required) input.required = true;
    wrap.append(label, input);
    if (schema.description) {
      const help = document.createElement("p");
      help.className = "help";
      help.id = id + "-help";
      help.textContent = schema.description;
      input.setAttribute("aria-describedby", help.id);
      wrap.append(help);
    }
    const error = document.createElement("p");
    error.className = "error";
    error.hidden = true;
    wrap.append(error);
    return wrap;
  }

  function selectTool(name) {
    const tool = state.tools.find((t) => t.name === name);
    if (!tool) return;
    state.current = tool;
    document.querySelectorAll("#debug-tools button").forEach((b) => {
      b.setAttribute("aria-pressed", b.dataset.tool === name ? "true" : "false");
    });
    const schema = tool.inputSchema || { properties: {} };
    const required = new Set(schema.required || []);
    const fields = $("debug-fields");
    fields.innerHTML = "";
    const properties = schema.properties || {};
    for (const [key, prop] of Object.entries(properties)) fields.append(field(key, prop || {}, required.has(key)));
    if (!Object.keys(properties).length) fields.innerHTML = '<p class="help">This tool takes no arguments.</p>';
    $("debug-run-title").textContent = "Run " + tool.name;
    $("debug-tool-desc").textContent = tool.description || "";
    $("debug-form").hidden = false;
    $("debug-empty").hidden = true;
    const first = fields.querySelector("input, select, textarea");
    (first || $("debug-run")).focus();
  }

  function collect() {
    const args = {};
    let ok = true;
    $("debug-fields").querySelectorAll("input, select, textarea").forEach((input) => {
      const error = input.parentElement.querySelector(".error");
      error.hidden = true;
      input.removeAttribute("aria-invalid");
      const raw = input.value.trim();
      const fail = (text) => {
        error.textContent = text;
        error.hidden = false;
        input.setAttribute("aria-invalid", "true");
        ok = false;
      };
      if (!raw) {
        if (input.required) fail("Required.");
        return;
      }
      const type = input.dataset.type;
      try {
        if (input.dataset.enum) args[input.name] = JSON.parse(raw);
        else if (type === "integer") {
          if (!/^-?\d+$/.test(raw)) throw new Error("Give a whole number.");
          args[input.name] = parseInt(raw, 10);
        } else if (type === "number") {
          if (Number.isNaN(Number(raw))) throw new Error("Give a number.");
          args[input.name] = Number(raw);
        } else if (type === "boolean") args[input.name] = raw === "true";
        else if (type === "object" || type === "array") {
          const value = JSON.parse(raw);
          if (type === "array" && !Array.isArray(value)) throw new Error("Give a JSON array.");
          if (type === "object" && (value === null || typeof value !== "object" || Array.isArray(value))) throw new Error("Give a JSON object.");
          args[input.name] = value;
        } else args[input.name] = raw;
      } catch (e) {
        fail(e instanceof SyntaxError ? "Not valid JSON." : e.message);
      }
    });
    return ok ? args : null;
  }

  function showResult(exchange) {
    $("debug-exchange").hidden = false;
    $("debug-request").textContent = pretty(exchange.request);
    $("debug-response").textContent = exchange.message ? pretty(exchange.message) : "(no JSON-RPC response)";
    $("debug-latency").textContent = exchange.latency !== undefined ? `${exchange.latency} ms` : "";
    const result = $("debug-result");
    const badge = $("debug-result-state");
    const message = exchange.message || {};
    let text = "";
    let isError = false;
    if (message.error) {
      isError = true;
      text = `JSON-RPC error ${message.error.code}: ${message.error.message}`;
    } else if (message.result) {
      isError = !!message.result.isError;
      text = (message.result.content || []).map((c) => c.type === "text" ? c.text : pretty(c)).join("\n\n");
      if (!text && message.result.structuredContent) text = pretty(message.result.structuredContent);
    } else if (exchange.error) {
      isError = true;
      text = exchange.error;
    }
    result.textContent = text || "(empty result)";
    result.classList.toggle("is-error", isError);
    badge.className = "badge " + (isError ? "badge-danger" : "badge-ok");
    badge.textContent = isError ? "isError" : "OK";
  }

  function useCredential(value, label) {
    state.credential = value || null;
    state.session = null;  // a session belongs to the consumer that opened it
    $("debug-credential-state").textContent = value ? `Calling as ${label}.` : "No credential: the endpoint answers 401.";
    if (value) connect();
  }

  const useConsumer = $("debug-use-consumer");
  if (useConsumer) {
    useConsumer.addEventListener("click", async () => {
      const pick = $("debug-consumer");
      useConsumer.disabled = true;
      try {
        const response = await fetch(useConsumer.dataset.url, {
          method: "POST", credentials: "same-origin",
          headers: { "X-CSRFToken": useConsumer.dataset.csrf, "Content-Type": "application/x-www-form-urlencoded" },
          body: "consumer=" + encodeURIComponent(pick.value),
        });
        const answer = await response.json().catch(() => ({}));
        if (!response.ok) throw new Error(answer.detail || `HTTP ${response.status}`);
        useCredential(answer.credential, `${answer.consumer} (for ${Math.round(answer.expires_in / 60)} minutes)`);
      } catch (error) {
        $("debug-credential-state").textContent = "Could not get a credential: " + error.message;
      } finally {
        useConsumer.disabled = false;
      }
    });
  }
  const usePaste = $("debug-use-paste");
  if (usePaste) {
    usePaste.addEventListener("click", () => useCredential($("debug-paste").value.trim(), "the pasted credential"));
  }

  $("debug-connect").addEventListener("click", connect);
  if (root.dataset.autoconnect) connect();
  $("debug-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!state.current) return;
    const args = collect();
    if (!args) return;
    const button = $("debug-run");
    button.disabled = true;
    button.textContent = "Running…";
    try {
      const exchange = await rpc("tools/call", { name: state.current.name, arguments: args });
      showResult(exchange);
    } catch (error) {
      showResult({ request: error.request || {}, message: null, error: error.message });
    } finally {
      button.disabled = false;
      button.textContent = "Run";
    }
  });
  window.addEventListener("pagehide", () => {
    if (state.session) {
      const headers = { "Mcp-Session-Id": state.session, "MCP-Protocol-Version": state.protocol || PROTOCOL };
      const url = withCredential(headers);
      fetch(url, { method: "DELETE", keepalive: true, credentials: "omit", headers });
    }
  });
})();
