/* povrisk's service worker (scope /app/): pages from the network while there is one, from the phone's
   copy when there is none; a step or a declaration that cannot reach the server is kept in the phone's
   queue (queue-store.js) and sent later by the pages' script (offline.js). Caches: PAGES holds one
   person's pages (her villages' households, her worklist), ASSETS the site's own files. */
"use strict";
importScripts("/app/static/queue-store.js");

const PAGES = "povrisk-pages-v1";
const ASSETS = "povrisk-assets-v1";
const NETWORK_WAIT_MS = 6000; // a weak signal: give up on the network after this and use the phone's copy
const QUEUED_FORMS = [/^\/app\/cases\/\d+\/steps$/, /^\/app\/declarations$/];

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith("/app/")) return;
  if (request.method === "POST" && QUEUED_FORMS.some((form) => form.test(url.pathname))) {
    event.respondWith(sendOrQueue(request, url));
  } else if (request.method === "GET" && isAsset(url)) {
    event.respondWith(assetFromPhone(request, url));
  } else if (request.method === "GET" && request.mode === "navigate") {
    event.respondWith(pageFromNetworkOrPhone(request, url));
  }
});

function isAsset(url) {
  return url.pathname.startsWith("/app/static/") || url.pathname.startsWith("/app/offline/texts.");
}

function withTimeout(request) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), NETWORK_WAIT_MS);
  return fetch(request, { signal: controller.signal }).finally(() => clearTimeout(timer));
}

async function assetFromPhone(request, url) {
  const cache = await caches.open(ASSETS);
  const kept = await cache.match(url.pathname);
  const fresh = fetch(request).then(async (response) => {
    if (response.ok) await cache.put(url.pathname, response.clone());
    return response;
  });
  if (kept) {
    fresh.catch(() => undefined);
    return kept;
  }
  return fresh;
}

async function pageFromNetworkOrPhone(request, url) {
  try {
    const response = await withTimeout(request);
    if (response.ok && response.type === "basic") await refreshKept(url, response.clone());
    return response;
  } catch (offline) {
    return (await keptPage(url)) || new Response("offline", { status: 503, headers: { "content-type": "text/plain" } });
  }
}

async function refreshKept(url, response) {
  const cache = await caches.open(PAGES);
  const key = url.pathname + url.search;
  if (await cache.match(key)) await cache.put(key, response);
}

async function keptPage(url) {
  const cache = await caches.open(PAGES);
  if (url.pathname.endsWith("/whatif")) return cache.match("/app/offline/whatif");
  return (
    (await cache.match(url.pathname + url.search)) ||
    (await cache.match(url.pathname)) ||
    (await cache.match("/app/offline/unavailable"))
  );
}

async function sendOrQueue(request, url) {
  const copy = request.clone();
  try {
    return await withTimeout(request);
  } catch (offline) {
    const me = await povriskStore.get("meta", "me");
    const form = await copy.formData();
    const fields = {};
    for (const [name, value] of form.entries()) {
      if (typeof value === "string" && name !== "csrf_token" && name !== "submission_key") fields[name] = value;
    }
    const key = form.get("submission_key") || self.crypto.randomUUID();
    const back = fields.back && fields.back.startsWith("/app/") ? fields.back : "/app/";
    if (!me) return Response.redirect(new URL("/app/offline/unavailable", self.location.origin).href, 303);
    await povriskStore.put("queue", {
      key,
      kind: url.pathname.endsWith("/declarations") ? "declaration" : "step",
      user: me.user,
      grant: me.grant || "",
      made_at: new Date().toISOString(),
      seen_at: fields.rendered_at || null,
      fields,
      household: fields.household || "",
      back,
      state: "waiting",
    });
    return Response.redirect(new URL(`${back}?queued=${encodeURIComponent(key)}`, self.location.origin).href, 303);
  }
}
