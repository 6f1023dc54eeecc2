// Small behaviours of the console pages; every page also works without them (plain links and forms).
(function () {
  "use strict";

  const drawer = () => document.getElementById("drawer");
  let opener = null;

  function closeDrawer() {
    const el = drawer();
    if (!el || !el.innerHTML.trim()) return;
    el.innerHTML = "";
    document.body.style.overflow = "";
    if (opener && document.contains(opener)) opener.focus();
    opener = null;
  }

  function focusFirst(root) {
    const target = root.querySelector("[autofocus]") ||
      root.querySelector(".has-error input, .has-error textarea, .has-error select") ||
      root.querySelector("input:not([type=hidden]):not([disabled]), textarea, select, button:not(.drawer-close)");
    if (target) target.focus();
  }

  // Keep Tab inside the open panel (it is a modal dialog).
  function trapFocus(event) {
    const panel = document.querySelector("#drawer .drawer");
    if (!panel || event.key !== "Tab") return;
    const items = panel.querySelectorAll("a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select, textarea");
    if (!items.length) return;
    const first = items[0], last = items[items.length - 1];
    if (event.shiftKey && document.activeElement === first) { last.focus(); event.preventDefault(); }
    else if (!event.shiftKey && document.activeElement === last) { first.focus(); event.preventDefault(); }
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeDrawer();
    trapFocus(event);
  });

  document.addEventListener("click", (event) => {
    const closer = event.target.closest("[data-drawer-close]");
    if (closer) { event.preventDefault(); closeDrawer(); return; }
    const dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) { dismiss.closest(".message").remove(); return; }
    const copy = event.target.closest("[data-copy]");
    if (copy) { event.preventDefault(); copyText(copy); return; }
    const tab = event.target.closest("[role=tab]");
    if (tab) { selectTab(tab); }
    const example = event.target.closest("[data-yaml-example]");
    if (example) { fillExample(event, example); }
  });

  document.addEventListener("change", (event) => {
    const form = event.target.closest("form[data-autosubmit]");
    if (form) form.requestSubmit ? form.requestSubmit() : form.submit();
    if (event.target.closest("[data-server-form]")) syncServerForm(event.target.closest("[data-server-form]"));
    if (event.target.closest("[data-auth-form]")) syncAuthForm(event.target.closest("[data-auth-form]"));
    if (event.target.closest("[data-authorization-form]")) {
      syncAuthorizationForm(event.target.closest("[data-authorization-form]"));
    }
    if (event.target.closest("[data-consumer-auth-form]")) {
      syncConsumerAuthForm(event.target.closest("[data-consumer-auth-form]"));
    }
  });

  document.body.addEventListener("htmx:beforeRequest", (event) => {
    const target = event.detail.target;
    if (target && target.id === "drawer" && !drawer().innerHTML.trim()) opener = event.detail.elt;
  });

  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id === "drawer" && drawer().innerHTML.trim()) {
      document.body.style.overflow = "hidden";
    }
    init(document.contains(event.detail.target) ? event.detail.target : document);
    // An outerHTML swap inside a form (the backend picker) needs its form re-synced.
    document.querySelectorAll("[data-server-form]").forEach(syncServerForm);
  });

  // After htmx has restored its own idea of focus: the panel's first field, or the first one in error.
  document.body.addEventListener("htmx:afterSettle", (event) => {
    if (event.detail.target.id === "drawer" && drawer().innerHTML.trim()) focusFirst(drawer());
  });

  // ------------------------------------------------------------ copy buttons
  function copyText(button) {
    const source = button.dataset.copy ? document.getElementById(button.dataset.copy) : null;
    const text = source ? (source.value !== undefined && source.tagName !== "CODE" && source.tagName !== "PRE" ? source.value : source.textContent) : button.dataset.copyText;
    const done = () => {
      const old = button.dataset.label || button.textContent;
      button.dataset.label = old;
      button.textContent = "Copied";
      button.setAttribute("aria-live", "polite");
      setTimeout(() => { button.textContent = old; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
    } else {
      fallbackCopy(text, done);
    }
  }

  function fallbackCopy(text, done) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } finally { area.remove(); }
  }

  // ------------------------------------------------------------ tabs (client configurations)
  function selectTab(tab) {
    const list = tab.closest("[role=tablist]");
    list.querySelectorAll("[role=tab]").forEach((t) => {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      const panel = document.getElementById(t.getAttribute("aria-controls"));
      if (panel) panel.hidden = !on;
    });
  }

  document.addEventListener("keydown", (event) => {
    const tab = event.target.closest && event.target.closest("[role=tab]");
    if (!tab || !["ArrowLeft", "ArrowRight"].includes(event.key)) return;
    const tabs = Array.from(tab.closest("[role=tablist]").querySelectorAll("[role=tab]"));
    const next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : -1) + tabs.length) % tabs.length];
    selectTab(next);
    next.focus();
  });

  // ------------------------------------------------------------ Create MCP Service panel
  function syncServerForm(form) {
    const typeInput = form.querySelector("input[name=server_type]:checked");
    const type = typeInput ? typeInput.value : form.dataset.serverType;
    form.querySelectorAll("[data-for-type]").forEach((el) => {
      el.hidden = el.dataset.forType !== type;
    });
    form.querySelectorAll("[data-for-type-not]").forEach((el) => {
      el.hidden = el.dataset.forTypeNot === type;
    });
    // Offer only the services whose protocol fits the type.
    const wanted = type === "direct_proxy" ? "mcp" : "http";
    const select = form.querySelector("select[name=backend_service]");
    const picker = form.querySelector("[data-backends]");
    const choices = JSON.parse((picker && picker.dataset.backends) || "[]");
    if (select) {
      const protocolOf = Object.fromEntries(choices.map((c) => [String(c.id), c.protocol]));
      Array.from(select.options).forEach((option) => {
        if (!option.value) return;
        const fits = protocolOf[option.value] === wanted;
        option.hidden = !fits;
        option.disabled = !fits;
        if (!fits && option.selected) select.value = "";
      });
    }
    const protocol = form.querySelector("[name=new_service_protocol]");
    if (protocol) protocol.value = wanted;
    const label = form.querySelector("[data-backend-label]");
    if (label) label.textContent = type === "direct_proxy" ? "Backend MCP service" : "Backend HTTP service";
    const path = form.querySelector("input[name=backend_path]");
    const preview = form.querySelector("[data-path-preview]");
    const name = form.querySelector("input[name=name]");
    if (preview) {
      const serverName = (name && name.value.trim()) || (form.dataset.serverName || "<name>");
      const backendPath = (path && path.value.trim()) || "/sse";
      preview.textContent = "/mcp-servers/" + serverName + " → backend " + backendPath;
    }
  }

  document.addEventListener("input", (event) => {
    const form = event.target.closest && event.target.closest("[data-server-form]");
    if (form && ["name", "backend_path"].includes(event.target.name)) syncServerForm(form);
    if (event.target.classList && event.target.classList.contains("code-editor")) updateGutter(event.target);
  });

  // ------------------------------------------------------------ backend authentication form
  function syncAuthForm(form) {
    const checked = form.querySelector("input[name=kind]:checked");
    const kind = checked ? checked.value : "none";
    form.querySelectorAll("[data-for-kind]").forEach((el) => {
      el.hidden = !el.dataset.forKind.split(" ").includes(kind);
    });
    const hint = form.querySelector("[data-credential-hint]");
    if (hint) {
      hint.textContent = {
        basic: "user:password — sent as an Authorization: Basic header.",
        bearer: "The token — sent as Authorization: Bearer <token>.",
        api_key: "The key value.",
      }[kind] || "";
    }
  }

  // ------------------------------------------------------------ Consumer Authentication
  // "Create Consumer" (the drop-down's last entry) shows the new consumer's fields; "All tools" hides the subset.
  function syncAuthorizationForm(form) {
    const pick = form.querySelector("select[name=consumer]");
    const fresh = form.querySelector("[data-new-consumer]");
    const all = form.querySelector("input[name=all_tools]");
    const subset = form.querySelector("[data-tool-subset]");
    if (pick && fresh) fresh.hidden = pick.value !== "new";
    if (all && subset) subset.hidden = all.checked;
  }

  function syncConsumerAuthForm(form) {
    const checked = form.querySelector("input[name=source]:checked");
    const field = form.querySelector("#field-name");
    if (field) field.hidden = !checked || checked.value === "bearer";
    const input = form.querySelector("input[name=name]");
    if (input && checked) input.placeholder = checked.value === "query" ? "api_key" : "X-API-Key";
  }

  // ------------------------------------------------------------ YAML editor
  function updateGutter(area) {
    const gutter = area.parentElement.querySelector(".gutter");
    if (!gutter) return;
    const bad = new Set((area.dataset.errorLines || "").split(",").filter(Boolean).map(Number));
    const count = Math.max(1, area.value.split("\n").length);
    let html = "";
    for (let i = 1; i <= count; i++) html += bad.has(i) ? `<span class="bad">${i}</span>` : `${i}\n`;
    gutter.innerHTML = html;
    gutter.scrollTop = area.scrollTop;
  }

  function fillExample(event, button) {
    const area = document.getElementById(button.dataset.yamlExample);
    const source = document.getElementById(button.dataset.exampleSource);
    if (!area || !source) return;  // without them the button submits and the server fills the editor
    event.preventDefault();
    if (area.value.trim() && area.value !== source.value &&
        !window.confirm("Replace the editor's content with the example?")) return;
    area.value = source.value;
    area.dataset.errorLines = "";
    updateGutter(area);
    area.focus();
  }

  function init(root) {
    root = root || document;
    root.querySelectorAll("[data-server-form]").forEach(syncServerForm);
    root.querySelectorAll("[data-auth-form]").forEach(syncAuthForm);
    root.querySelectorAll("[data-authorization-form]").forEach(syncAuthorizationForm);
    root.querySelectorAll("[data-consumer-auth-form]").forEach(syncConsumerAuthForm);
    root.querySelectorAll("textarea.code-editor").forEach((area) => {
      updateGutter(area);
      if (area.dataset.ready) return;
      area.dataset.ready = "1";
      area.addEventListener("scroll", () => {
        const gutter = area.parentElement.querySelector(".gutter");
        if (gutter) gutter.scrollTop = area.scrollTop;
      });
      area.addEventListener("keydown", (event) => {
        // Tab indents inside the editor; Escape then Tab leaves it (keyboard users are never trapped).
        if (event.key === "Tab" && !event.shiftKey && !area.dataset.escaped) {
          event.preventDefault();
          const start = area.selectionStart;
          area.setRangeText("  ", start, area.selectionEnd, "end");
          updateGutter(area);
        } else if (event.key === "Escape") {
          area.dataset.escaped = "1";
        } else {
          delete area.dataset.escaped;
        }
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => init());
  else init();
})();
