// The console's live parts, in plain JS: presence heartbeat, server-sent events, the queue's
// emergency alert, the SMS segment counter, canned replies and service search for the reply.
// Every page works without this file; it only makes the pages live and quicker to use.
"use strict";

(function () {
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";

  // Requests this script makes on its own are marked, so they never keep a console signed in
  // that nobody is using (the server knows the heartbeat, the stream and the fragments anyway).
  const BACKGROUND = { "x-hotline-background": "1" };

  // A session that ended (idle, too old, reset) takes the page with it: a case left on the
  // screen must not stay readable after its counsellor is signed out.
  function signedOut(response) {
    if (response.status === 401 || (response.redirected && new URL(response.url).pathname === "/login")) {
      window.location.replace("/login");
      return true;
    }
    return false;
  }

  function background(url, options) {
    const headers = Object.assign({}, BACKGROUND, (options && options.headers) || {});
    return fetch(url, Object.assign({ credentials: "same-origin" }, options || {}, { headers }))
      .then((response) => (signedOut(response) ? Promise.reject(401) : response));
  }

  // ------------------------------------------------------------ presence (the rota's heartbeat)
  if (csrf) {
    const beat = () => background("/heartbeat", { method: "POST", headers: { "x-csrf-token": csrf } })
      .catch(() => {});
    beat();
    setInterval(beat, 30000);
  }

  // ------------------------------------------------------------ pages that refresh themselves
  // The dashboard's figures move on their own: its main part is fetched again while the page
  // is in view, never mid-typing.
  const refreshing = document.querySelector("[data-auto-refresh]");
  if (refreshing) {
    const every = Number(refreshing.dataset.autoRefresh) || 30000;
    setInterval(() => {
      const typing = document.activeElement && document.activeElement.tagName === "INPUT";
      if (document.visibilityState !== "visible" || typing) return;
      background(window.location.href)
        .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
        .then((html) => {
          const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
          const main = document.querySelector("main");
          if (fresh && main) main.replaceChildren(...fresh.childNodes);
        })
        .catch(() => {});
    }, every);
  }

  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });

  // ------------------------------------------------------------ sound and title for emergencies
  let audio = null;
  const soundButton = document.getElementById("sound");

  function enableSound() {
    if (!audio) {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      audio = new Context();
    }
    if (audio.state === "suspended") audio.resume();
    if (soundButton) {
      soundButton.textContent = soundButton.dataset.ready;
      soundButton.classList.add("on");
    }
  }
  // Browsers allow sound only after a gesture: the first click or key anywhere enables it.
  document.addEventListener("click", enableSound, { once: true });
  document.addEventListener("keydown", enableSound, { once: true });

  function beep() {
    if (!audio) return;
    const now = audio.currentTime;
    [0, 0.25].forEach((offset) => {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, now + offset);
      gain.gain.exponentialRampToValueAtTime(0.3, now + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.18);
      tone.connect(gain).connect(audio.destination);
      tone.start(now + offset);
      tone.stop(now + offset + 0.2);
    });
  }

  const originalTitle = document.title;
  let alerting = false;
  function alertEmergency(label, caseId) {
    document.title = "\u{1F6A8} " + label + " " + caseId + " \u00B7 " + originalTitle;
    alerting = true;
    beep();
  }
  function calm() {
    if (alerting && document.visibilityState === "visible") {
      document.title = originalTitle;
      alerting = false;
    }
  }
  window.addEventListener("focus", () => setTimeout(calm, 4000));
  document.addEventListener("click", calm);
  document.addEventListener("keydown", calm);

  // ------------------------------------------------------------ server-sent events
  function follow(params, onChange) {
    const live = document.getElementById("live");
    const source = new EventSource("/events?" + new URLSearchParams(params).toString());
    source.addEventListener("open", () => {
      if (live) { live.textContent = live.dataset.live; live.className = "live on"; }
    });
    source.addEventListener("error", () => {
      if (live) { live.textContent = live.dataset.offline; live.className = "live off"; }
    });
    source.addEventListener("case", (event) => onChange(JSON.parse(event.data)));
    return source;
  }

  function isEmergency(change) {
    return change.priority === "emergency" && (change.action === "opened" || change.action === "retriggered");
  }
  // A case at risk erased from the phone while open (DELETE then YES): the phone may be in
  // the exploiter's hands, so counsellors are alerted as for an emergency.
  function isErasedAtRisk(change) {
    return change.action === "erased_while_open" && (change.priority === "emergency" || change.priority === "high");
  }

  function debounce(fn, ms) {
    let timer = null;
    return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  // Fetch `url` into `target`, keeping only the newest answer: two reloads in flight can
  // come back out of order, and the older one (a reply still "sent") must not win.
  function reloader(target, url, after) {
    let asked = 0;
    return () => {
      const mine = ++asked;
      background(url())
        .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
        .then((html) => {
          if (mine !== asked) return;
          target.innerHTML = html;
          if (after) after();
        })
        .catch(() => {});
    };
  }

  // ------------------------------------------------------------ the queue page
  const queue = document.getElementById("queue");
  if (queue) {
    const refresh = debounce(
      reloader(queue, () => "/queue/rows?tab=" + encodeURIComponent(queue.dataset.tab)), 150);
    follow({ since: queue.dataset.since }, (change) => {
      // A delivery report changes no row: only the case page shows it.
      if (change.action === "delivery") return;
      if (isEmergency(change)) alertEmergency(queue.dataset.emergency, change.case);
      else if (isErasedAtRisk(change)) alertEmergency(queue.dataset.erased, change.case);
      refresh();
    });
    if (soundButton) soundButton.addEventListener("click", enableSound);
    // A whole row opens its case: an easy target on a phone.
    queue.addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-case-id]");
      if (row && !event.target.closest("a")) window.location.href = "/cases/" + row.dataset.caseId;
    });
    setInterval(refresh, 60000); // waiting times move on even when nothing happens
  }

  // ------------------------------------------------------------ the case page
  const casePage = document.getElementById("case");
  if (casePage) {
    const transcript = document.getElementById("transcript");
    const scrollDown = () => {
      const list = transcript.querySelector(".transcript");
      if (list) list.scrollTop = list.scrollHeight;
    };
    scrollDown();
    const reloadTranscript = debounce(
      reloader(transcript, () => transcript.dataset.src, scrollDown), 100);
    // New lines, and how far the sent ones got (the sender and Twilio's reports: "delivery").
    const messageActions = new Set(["message_received", "replied", "noted", "sent", "delivery"]);
    follow({ case: casePage.dataset.caseId, since: casePage.dataset.since }, (change) => {
      if (messageActions.has(change.action)) {
        reloadTranscript();
        if (change.action === "message_received" && document.visibilityState !== "visible") beep();
      } else {
        if (isEmergency(change)) alertEmergency(casePage.dataset.emergency, change.case);
        else if (isErasedAtRisk(change)) alertEmergency(casePage.dataset.erased, change.case);
        document.getElementById("changed").hidden = false;
        reloadTranscript();
      }
    });
  }

  // ------------------------------------------------------------ the reply box
  const reply = document.getElementById("reply-text");
  const counter = document.getElementById("segments");

  function segments(text, gsm) {
    // The same arithmetic as hotline/sms.py: GSM-7 160/153, else UCS-2 70/67.
    const chars = Array.from(text);
    if (!chars.length) return { count: 1, units: 0, ucs2: false };
    const isGsm = chars.every((c) => gsm.basic.has(c) || gsm.extension.has(c));
    const single = isGsm ? 160 : 70;
    const part = isGsm ? 153 : 67;
    const sizes = chars.map((c) => (isGsm ? (gsm.extension.has(c) ? 2 : 1) : (c.codePointAt(0) > 0xffff ? 2 : 1)));
    const units = sizes.reduce((a, b) => a + b, 0);
    if (units <= single) return { count: 1, units, ucs2: !isGsm };
    if (units === chars.length) return { count: Math.ceil(units / part), units, ucs2: !isGsm };
    let count = 1, used = 0;
    for (const size of sizes) {
      if (used + size > part) { count += 1; used = 0; }
      used += size;
    }
    return { count, units, ucs2: !isGsm };
  }

  function updateCounter() {
    if (!reply || !counter) return;
    const alphabet = JSON.parse(counter.dataset.gsm);
    const gsm = { basic: new Set(Array.from(alphabet.basic)), extension: new Set(Array.from(alphabet.extension)) };
    const text = reply.value.trim();
    const result = segments(text, gsm);
    counter.textContent = Array.from(text).length + " " + counter.dataset.chars + " \u00B7 " +
      result.count + " " + counter.dataset.label + (result.ucs2 ? " (" + counter.dataset.ucs2 + ")" : "");
    counter.classList.toggle("warn", result.count > 2);
  }

  function insertIntoReply(text) {
    if (!reply) return;
    const current = reply.value.replace(/\s+$/, "");
    reply.value = current ? current + "\n" + text : text;
    reply.focus();
    updateCounter();
  }

  // A refused reply (the person texted STOP, the case changed hands…) comes back as the page
  // with the reason on top: the words written are put back in the box, never lost. They stay
  // in this tab's session storage only, and go as soon as the reply is through.
  const replyForm = document.getElementById("reply-form");
  if (reply && replyForm && casePage) {
    const draftKey = "hotline-draft:" + casePage.dataset.caseId;
    const refused = document.querySelector('[data-testid="flash"].error');
    const draft = window.sessionStorage.getItem(draftKey);
    if (refused && draft && !reply.value) reply.value = draft;
    window.sessionStorage.removeItem(draftKey);
    replyForm.addEventListener("submit", () => window.sessionStorage.setItem(draftKey, reply.value));
  }

  if (reply) {
    reply.addEventListener("input", updateCounter);
    updateCounter();
    const canned = document.getElementById("canned");
    if (canned) {
      canned.addEventListener("change", () => {
        const option = canned.selectedOptions[0];
        if (option && option.dataset.text) insertIntoReply(option.dataset.text);
        canned.value = "";
      });
    }
  }

  // ------------------------------------------------------------ service directory
  const search = document.getElementById("service-search");
  const results = document.getElementById("service-results");
  if (search && results) {
    search.addEventListener("submit", (event) => {
      event.preventDefault();
      const query = new URLSearchParams(new FormData(search)).toString();
      fetch(search.action + "?" + query, { credentials: "same-origin" })
        .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
        .then((html) => { results.innerHTML = html; })
        .catch(() => {});
    });
    results.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-insert]");
      if (button) insertIntoReply(button.dataset.insert);
    });
  }
})();
