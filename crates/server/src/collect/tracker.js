/* Steward tracker: page views, events and leads, batched to the collect endpoint. */
(function () {
  "use strict";
  var w = window, nav = navigator, doc = document, loc = location, script = doc.currentScript;
  var TYPES = ["page_view", "bot_open", "bot_answer", "form_submit", "conversion", "click", "custom"];
  var MAX_EVENTS = 50, FLUSH_AT = 20, IDLE_MS = 5000, MAX_BYTES = 60000, VID = "steward_vid";

  function noop() {}
  function safe(fn) { // never throw into the host page
    return function () { try { return fn.apply(null, arguments); } catch (e) {} };
  }
  function now() { return new Date().toISOString(); }
  function size(s) { return new Blob([s]).size; }
  function attr(name) { return script && script.getAttribute ? script.getAttribute(name) : null; }
  function on(c, cfgName, attrName) {
    if (cfgName in c) return !!c[cfgName];
    var v = attr(attrName);
    return v !== null && /^(|1|true|yes|on)$/i.test(v);
  }

  function uuidv7() {
    var b = new Uint8Array(16), i, ms = Date.now(), hi = Math.floor(ms / 4294967296), h = "";
    if (w.crypto && crypto.getRandomValues) crypto.getRandomValues(b);
    else for (i = 0; i < 16; i++) b[i] = Math.random() * 256;
    b[0] = hi >>> 8; b[1] = hi; b[2] = ms >>> 24; b[3] = ms >>> 16; b[4] = ms >>> 8; b[5] = ms;
    b[6] = 0x70 | (b[6] & 15); // version 7
    b[8] = 0x80 | (b[8] & 63); // variant 10
    for (i = 0; i < 16; i++) h += (b[i] + 256).toString(16).slice(1);
    return h.replace(/^(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-");
  }

  // First-party visitor id, kept in localStorage and a cookie: either one alone restores it.
  function visitorId() {
    var id = null, ok = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    try { id = localStorage.getItem(VID); } catch (e) {}
    try { if (!ok.test(id)) id = (doc.cookie.match(/(?:^|;\s*)steward_vid=([0-9a-f-]{36})/) || [])[1]; } catch (e) {}
    if (!ok.test(id)) id = uuidv7();
    try { localStorage.setItem(VID, id); } catch (e) {}
    try { // max-age: 396 days, about 13 months
      doc.cookie = VID + "=" + id + "; path=/; max-age=34214400; SameSite=Lax" + (loc.protocol === "https:" ? "; Secure" : "");
    } catch (e) {}
    return id;
  }

  function init() {
    var c = typeof __steward_config === "object" && __steward_config || {};
    var key = c.siteKey || attr("data-site-key");
    var endpoint = c.endpoint || attr("data-endpoint") ||
      (script && script.src ? new URL(script.src, loc.href) : loc).origin + "/collect";
    var cookieless = on(c, "cookieless", "data-cookieless");
    var optedOut = on(c, "honourGpc", "data-honour-gpc") &&
      (nav.globalPrivacyControl === true || nav.doNotTrack === "1" || w.doNotTrack === "1");

    var old = w.steward;
    if (old && old._steward) return; // loaded twice
    var pending = old && old.q && old.q.length ? [].slice.call(old.q) : [];
    var api = w.steward = { _steward: true, track: noop, lead: noop, flush: noop, q: { push: noop } };
    if (!key || optedOut) return;

    var vid = cookieless ? null : visitorId();
    var url = endpoint + (endpoint.indexOf("?") < 0 ? "?" : "&") + "site_key=" + encodeURIComponent(key);
    var queue = [], timer = null, leaving = false;

    function send(json) {
      var small = size(json) < MAX_BYTES;
      try {
        if (small && nav.sendBeacon && nav.sendBeacon(url, new Blob([json], { type: "text/plain" }))) return;
      } catch (e) {}
      // A refused beacon means the browser's 64 KB keep-alive quota is in use: a keep-alive fetch
      // would be refused too, so one is only tried when the page is going away or has no beacons.
      if (w.fetch) fetch(url, {
        method: "POST", body: json, headers: { "Content-Type": "text/plain" }, credentials: "omit",
        keepalive: small && (leaving || !nav.sendBeacon)
      }).catch(noop);
    }

    // At most MAX_EVENTS events and under MAX_BYTES a request (a single oversized event goes alone).
    function sendBatch(events) {
      var head = { site_key: key }, json;
      if (vid) head.visitor_id = vid;
      head.sent_at = now();
      head.language = nav.language || null;
      json = JSON.stringify(head).slice(0, -1) + ',"events":[' + events.join(",") + "]}";
      if (events.length > 1 && size(json) >= MAX_BYTES) {
        sendBatch(events.slice(0, events.length >> 1));
        sendBatch(events.slice(events.length >> 1));
      } else if (events.length) send(json);
    }

    function flush() {
      clearTimeout(timer);
      var events = queue.splice(0).map(function (e) {
        try { return JSON.stringify(e); } catch (err) { return ""; } // unserialisable: dropped
      }).filter(Boolean);
      while (events.length) sendBatch(events.splice(0, MAX_EVENTS));
    }

    function enqueue(type, extra) {
      var e = { type: type, occurred_at: now(), url: loc.href, title: doc.title }, k;
      for (k in extra) e[k] = extra[k];
      queue.push(e);
      clearTimeout(timer);
      if (queue.length >= FLUSH_AT) flush();
      else timer = setTimeout(safe(flush), IDLE_MS);
      return e;
    }

    var lastPage, lastUrl;
    function pageView(referrer) {
      lastPage = loc.pathname + loc.search;
      lastUrl = loc.href;
      return enqueue("page_view", { referrer: referrer || null });
    }
    function navigated() {
      if (loc.pathname + loc.search === lastPage) return;
      var e = pageView(lastUrl), at = loc.href;
      // Routers often set the title just after the URL: take it a tick later if still there.
      setTimeout(function () { if (loc.href === at) e.title = doc.title; }, 0);
    }

    function dispatch(cmd) {
      var args = [].slice.call(cmd || []), fn = args[0] !== "q" && api[args[0]];
      if (typeof fn === "function") fn.apply(null, args.slice(1));
    }

    api.track = safe(function (name, properties) {
      if (!name) return;
      var props = Object.assign({}, typeof properties === "object" && properties), type = String(name);
      if (TYPES.indexOf(type) < 0) { props.event = type; type = "custom"; }
      enqueue(type, type === "page_view" ? { properties: props, referrer: doc.referrer || null } : { properties: props });
    });
    api.lead = safe(function (fields) {
      enqueue("form_submit", { lead: fields || {} });
      flush();
    });
    api.flush = safe(flush);
    api.q = { push: safe(function () { [].forEach.call(arguments, dispatch); }) };

    ["pushState", "replaceState"].forEach(function (m) {
      var orig = history[m];
      if (typeof orig === "function") history[m] = function () {
        var r = orig.apply(this, arguments);
        safe(navigated)();
        return r;
      };
    });
    w.addEventListener("popstate", safe(navigated));
    w.addEventListener("pagehide", safe(function () { leaving = true; flush(); }));
    w.addEventListener("pageshow", safe(function (ev) { leaving = false; if (ev.persisted) pageView(doc.referrer); }));
    doc.addEventListener("visibilitychange", safe(function () {
      leaving = doc.visibilityState === "hidden";
      if (leaving) flush();
    }));

    pageView(doc.referrer);
    pending.forEach(safe(dispatch));
  }

  safe(init)();
})();
