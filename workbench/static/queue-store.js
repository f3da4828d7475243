/* povrisk: the phone's own store (IndexedDB), shared by the pages' script and the service worker.
   Stores: "queue" (submissions waiting to send, by their idempotency key), "grants" (each person's token
   for sending, by user), "meta" (who the kept pages belong to, when they were last saved). */
"use strict";

self.povriskStore = (() => {
  const NAME = "povrisk-offline";
  const STORES = { queue: "key", grants: "user", meta: "id" };
  let opened = null;

  function open() {
    if (opened) return opened;
    opened = new Promise((resolve, reject) => {
      const request = indexedDB.open(NAME, 1);
      request.onupgradeneeded = () => {
        for (const [name, keyPath] of Object.entries(STORES)) {
          if (!request.result.objectStoreNames.contains(name)) request.result.createObjectStore(name, { keyPath });
        }
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    return opened;
  }

  async function run(store, mode, work) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const transaction = db.transaction(store, mode);
      const request = work(transaction.objectStore(store));
      transaction.oncomplete = () => resolve(request ? request.result : undefined);
      transaction.onerror = () => reject(transaction.error);
    });
  }

  return {
    get: (store, key) => run(store, "readonly", (s) => s.get(key)),
    all: (store) => run(store, "readonly", (s) => s.getAll()),
    put: (store, value) => run(store, "readwrite", (s) => s.put(value)),
    remove: (store, key) => run(store, "readwrite", (s) => s.delete(key)),
  };
})();
