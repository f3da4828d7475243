/* povrisk: the workbench without a signal (the pages work without this script; it adds the offline part).
   - registers the service worker (sw.js), which serves the phone's copy of a page when there is no signal
     and queues a step or a declaration that cannot reach the server;
   - keeps a cadre's worklist and her villages' household pages on the phone (prefetch), for her only:
     another person logging in, or her logging out, clears them;
   - shows on every page whether the phone is online, when its copy was saved, and what waits to send;
   - sends the queue when the connection returns (POST /app/sync), each submission once (its key), and
     lets her choose when a case moved on meanwhile;
   - warns before a logout while her records wait to send (they stay and are sent under her name).
   Every word shown comes from the server's message catalogue (/app/offline/texts.LANG.json). */
"use strict";

(() => {
  const body = document.body;
  const app = body.dataset.app || "/app";
  const user = body.dataset.user || "";
  const role = body.dataset.role || "";
  const PAGES = "povrisk-pages-v1";
  const ASSETS = "povrisk-assets-v1";
  const SAVE_EVERY_MS = 10 * 60 * 1000;
  const SEND_EVERY_MS = 30 * 1000;
  const CHUNK = 100;
  const store = self.povriskStore;
  let texts = null;
  let sending = false;

  function say(name, values = {}) {
    const text = texts && typeof texts[name] === "string" ? texts[name] : "";
    return text.replace(/\{(\w+)\}/g, (_, key) => (key in values ? String(values[key]) : ""));
  }

  function moment(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? "" : date.toLocaleString(body.dataset.lang === "en" ? "en-GB" : "zh-CN", {
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    });
  }

  function element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    for (const child of children) node.append(child);
    return node;
  }

  async function loadTexts() {
    const lang = body.dataset.lang === "en" ? "en" : "zh";
    try {
      const response = await fetch(`${app}/offline/texts.${lang}.json`);
      return response.ok ? await response.json() : null;
    } catch (offline) {
      return null;
    }
  }

  // ---------------------------------------------------------------------------- who the phone works for

  async function rememberWho() {
    if (!user) return;
    const owner = await store.get("meta", "owner");
    if (owner && owner.user !== user) await forgetPages();
    await store.put("meta", { id: "owner", user });
    let grant = await store.get("grants", user);
    const ended = !grant || Date.parse(grant.expires_at) < Date.now() + 24 * 3600 * 1000;
    if (ended && navigator.onLine && body.dataset.csrf) {
      try {
        const response = await fetch(`${app}/offline/grant`, {
          method: "POST", headers: { "x-csrf-token": body.dataset.csrf },
        });
        if (response.ok) {
          const given = await response.json();
          grant = { user, grant: given.grant, expires_at: given.expires_at };
          await store.put("grants", grant);
        }
      } catch (offline) { /* kept as it was; asked again next time */ }
    }
    await store.put("meta", { id: "me", user, grant: grant ? grant.grant : "" });
    if (grant) {
      for (const item of await store.all("queue")) {
        if (item.user === user && item.grant !== grant.grant && item.state !== "conflict") {
          await store.put("queue", { ...item, grant: grant.grant, state: item.state === "unauthorised" ? "waiting" : item.state });
        }
      }
    }
  }

  async function forgetPages() {
    await caches.delete(PAGES);
    await store.remove("meta", "synced");
    await store.remove("meta", "owner");
    await store.remove("meta", "me");
  }

  // ---------------------------------------------------------------------------- what the phone keeps

  async function savePages(force) {
    if (role !== "cadre" || !navigator.onLine) return;
    const synced = await store.get("meta", "synced");
    if (!force && synced && synced.user === user && Date.now() - Date.parse(synced.at) < SAVE_EVERY_MS) return;
    showState(say("saving"));
    try {
      const response = await fetch(`${app}/offline/manifest`);
      if (!response.ok) return;
      const manifest = await response.json();
      if (manifest.user !== user) return;
      const pages = await caches.open(PAGES);
      const assets = await caches.open(ASSETS);
      const kept = new Set();
      for (const path of manifest.assets) {
        const asset = await fetch(path);
        if (asset.ok) await assets.put(path, asset);
      }
      for (const path of manifest.pages) {
        const page = await fetch(path, { redirect: "error" });
        if (page.ok) {
          await pages.put(path, page);
          kept.add(path);
        }
      }
      for (const path of manifest.bundles) {
        const bundle = await fetch(path);
        if (!bundle.ok) continue;
        const village = await bundle.json();
        for (const [page, html] of Object.entries(village.pages)) {
          await pages.put(page, new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } }));
          kept.add(page);
        }
      }
      for (const request of await pages.keys()) {
        const url = new URL(request.url);
        if (!kept.has(url.pathname + url.search)) await pages.delete(request);
      }
      await store.put("meta", { id: "synced", user, at: new Date().toISOString(), pages: kept.size });
    } catch (offline) { /* the next page load tries again */ }
    await render();
  }

  async function refreshPages(paths) {
    const pages = await caches.open(PAGES);
    for (const path of paths) {
      if (!(await pages.match(path))) continue;
      try {
        const page = await fetch(path, { redirect: "error" });
        if (page.ok) await pages.put(path, page);
      } catch (offline) { return; }
    }
  }

  // ---------------------------------------------------------------------------- the queue

  async function send() {
    if (sending || !navigator.onLine) return;
    sending = true;
    let sent = 0;
    const touched = new Set();
    try {
      const waiting = (await store.all("queue")).filter((item) => item.state === "waiting");
      for (let start = 0; start < waiting.length; start += CHUNK) {
        const chunk = waiting.slice(start, start + CHUNK);
        const response = await fetch(`${app}/sync`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ submissions: chunk.map(({ key, grant, user: by, kind, made_at, seen_at, fields }) => (
            { key, grant, user: by, kind, made_at, seen_at, fields })) }),
        });
        if (!response.ok) break;
        const answer = await response.json();
        for (const result of answer.results) {
          const item = chunk.find((one) => one.key === result.key);
          if (!item) continue;
          if (result.outcome === "applied" || result.outcome === "duplicate") {
            await store.remove("queue", item.key);
            sent += 1;
            touched.add(item.back);
          } else {
            await store.put("queue", { ...item, state: result.outcome, message: result.message, conflict: result.conflict });
          }
        }
      }
    } catch (offline) { /* still waiting: sent when the connection returns */ }
    sending = false;
    if (sent) {
      await store.put("meta", { id: "sent", at: new Date().toISOString(), count: sent });
      await refreshPages([...touched, `${app}/`]);
    }
    await render(sent);
  }

  async function resolve(key, choice) {
    const item = await store.get("queue", key);
    if (!item) return;
    if (choice === "dismiss") {
      await store.remove("queue", key);
    } else {
      const conflict = item.conflict || {};
      const fields = choice === "mine"
        ? { ...item.fields, version: String(conflict.version), status: conflict.status }
        : item.fields;
      await store.put("queue", {
        ...item, key: crypto.randomUUID(), kind: choice === "mine" ? "step" : "note", fields,
        seen_at: new Date().toISOString(), state: "waiting", conflict: null, message: "",
      });
      await store.remove("queue", key);
    }
    await send();
    await render();
  }

  // ---------------------------------------------------------------------------- what she sees

  function showState(text) {
    const state = document.getElementById("sync-state");
    if (!state || !text) return;
    state.textContent = text;
    state.hidden = false;
  }

  function itemTitle(item) {
    if (item.kind === "declaration") {
      const event = (texts && texts.events && texts.events[item.fields.event]) || "";
      return say("item_declaration", { event, household: item.fields.household || "" });
    }
    const step = (texts && texts.steps && texts.steps[item.fields.step]) || "";
    return say("item_step", { step, household: item.household });
  }

  function itemView(item) {
    const entry = element("li", { class: `queued ${item.state}`, "data-key": item.key });
    entry.append(element("strong", {}, itemTitle(item)));
    entry.append(element("span", { class: "muted" }, " " + say("item_made", { user: item.user, time: moment(item.made_at) })));
    if (item.fields.note) entry.append(element("p", {}, item.fields.note));
    const fixes = Object.entries(item.fields).filter(([name, value]) => name.startsWith("fix.") && value.trim());
    if (fixes.length) entry.append(element("p", { class: "muted" }, `${say("corrections_typed", { count: fixes.length })} · ${say("rescored_later")}`));
    if (item.state === "waiting") entry.append(element("p", { class: "state" }, say("state_waiting")));
    if (item.state === "unauthorised") entry.append(element("p", { class: "state error" }, say("state_unauthorised", { user: item.user })));
    if (item.state === "refused" || item.state === "forbidden") {
      entry.append(element("p", { class: "state error" }, say("state_refused", { reason: item.message || "" })));
      entry.append(choice(item.key, "dismiss", say("dismiss"), "secondary"));
    }
    if (item.state === "conflict" && item.conflict) {
      const conflict = item.conflict;
      entry.append(element("p", { class: "state error" }, say("state_conflict")));
      const versions = element("div", { class: "versions" });
      versions.append(element("div", { class: "mine" }, element("h3", {}, say("mine")), element("p", {}, conflict.mine)));
      const theirs = element("div", { class: "theirs" }, element("h3", {}, say("theirs")), element("p", {}, conflict.status_label));
      const steps = element("ul", { class: "steps" });
      for (const line of conflict.theirs) steps.append(element("li", {}, line));
      theirs.append(steps);
      versions.append(theirs);
      entry.append(versions);
      if (conflict.can_apply) entry.append(choice(item.key, "mine", say("choose_mine")));
      else entry.append(element("p", { class: "muted" }, conflict.cannot_apply));
      entry.append(choice(item.key, "theirs", say("choose_theirs"), "secondary"));
    }
    return entry;
  }

  function choice(key, what, words, kind = "") {
    const button = element("button", { type: "button", class: `choose ${kind}`, "data-choice": what }, words);
    button.addEventListener("click", () => resolve(key, what));
    return button;
  }

  async function render(justSent = 0) {
    if (!texts) return;
    const queue = (await store.all("queue")).sort((a, b) => a.made_at.localeCompare(b.made_at));
    const synced = await store.get("meta", "synced");
    const parts = [navigator.onLine ? say("online") : say("offline")];
    if (role === "cadre") parts.push(synced && synced.user === user ? say("synced", { time: moment(synced.at) }) : say("never_synced"));
    if (!navigator.onLine && body.dataset.renderedAt) parts.push(say("page_from", { time: moment(body.dataset.renderedAt) }));
    if (queue.length) parts.push(say("waiting_count", { count: queue.length }));
    if (user || queue.length) showState(parts.join(" · "));
    body.classList.toggle("is-offline", !navigator.onLine);
    const panel = document.getElementById("queue");
    if (!panel) return;
    panel.replaceChildren();
    const queuedKey = new URLSearchParams(location.search).get("queued");
    if (queuedKey && queue.some((item) => item.key === queuedKey)) panel.append(element("p", { class: "notice", role: "status" }, say("queued")));
    if (justSent) panel.append(element("p", { class: "notice", role: "status" }, say("sent", { count: justSent })));
    if (queue.length) {
      panel.append(element("h2", {}, say("queue_title")), element("p", { class: "muted" }, say("queue_lead")));
      const others = queue.filter((item) => item.user !== user);
      if (others.length && user) panel.append(element("p", { class: "muted" }, say("other_user", { count: others.length, user: others[0].user })));
      const list = element("ol", { class: "queued-list" });
      for (const item of queue) list.append(itemView(item));
      panel.append(list);
    }
    panel.hidden = panel.childElementCount === 0;
  }

  // ---------------------------------------------------------------------------- forms

  function keyForms() {
    for (const form of document.querySelectorAll("form[data-queue]")) {
      form.addEventListener("submit", () => {
        let key = form.querySelector("input[name=submission_key]");
        if (!key) {
          key = element("input", { type: "hidden", name: "submission_key" });
          form.append(key);
        }
        key.value = crypto.randomUUID();
        if (form.dataset.queue === "declaration") {
          const household = form.querySelector("[name=household]").value.trim();
          let back = form.querySelector("input[name=back]");
          if (!back) {
            back = element("input", { type: "hidden", name: "back" });
            form.append(back);
          }
          back.value = `${app}/households/${encodeURIComponent(form.dataset.county || "")}/${encodeURIComponent(household)}`;
        }
      });
    }
    const household = document.querySelector("form[data-queue=declaration] [name=household]");
    const asked = new URLSearchParams(location.search).get("household");
    if (household && !household.value && asked) household.value = asked;
  }

  function guardLogout() {
    const form = document.getElementById("logout");
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      if (form.dataset.confirmed) return;
      event.preventDefault();
      if (!navigator.onLine) {
        ask(say("logout_offline"), [[say("logout_stay"), null]]);
        return;
      }
      const mine = (await store.all("queue")).filter((item) => item.user === user);
      const leave = async () => {
        if (!mine.length) {
          const grant = await store.get("grants", user);
          if (grant) {
            await fetch(`${app}/offline/grant/revoke`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ grant: grant.grant }) }).catch(() => undefined);
            await store.remove("grants", user);
          }
        }
        await forgetPages();
        form.dataset.confirmed = "1";
        form.submit();
      };
      if (!mine.length) {
        await leave();
        return;
      }
      ask(say("logout_warning", { count: mine.length }), [[say("logout_confirm"), leave], [say("logout_stay"), null]]);
    });
  }

  function ask(question, answers) {
    const dialog = element("dialog", { class: "ask", id: "ask" }, element("p", {}, question));
    const buttons = element("div", { class: "buttons" });
    for (const [words, then] of answers) {
      const button = element("button", { type: "button", class: then ? "" : "secondary" }, words);
      button.addEventListener("click", () => { dialog.close(); dialog.remove(); if (then) then(); });
      buttons.append(button);
    }
    dialog.append(buttons);
    body.append(dialog);
    dialog.showModal();
  }

  // ---------------------------------------------------------------------------- start

  async function start() {
    if (!("serviceWorker" in navigator) || !window.indexedDB || !store) return;
    try {
      await navigator.serviceWorker.register(`${app}/sw.js`, { scope: `${app}/` });
    } catch (unsupported) { return; }
    keyForms();
    texts = await loadTexts();
    guardLogout();
    await rememberWho();
    await render();
    window.addEventListener("online", async () => { await send(); await savePages(false); });
    window.addEventListener("offline", () => render());
    setInterval(() => send(), SEND_EVERY_MS);
    await send();
    await savePages(false);
    body.dataset.offlineReady = "1";
  }

  start();
})();
