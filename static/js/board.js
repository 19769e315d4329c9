// Board keys: j/k move between cards, a approves, r rejects (focuses the reason), e edits.
(function () {
  if (window.aiosBoardKeys) return; // htmx navigations load this again
  window.aiosBoardKeys = true;
  function cards() { return Array.from(document.querySelectorAll("article.card")); }
  function current() { return document.activeElement && document.activeElement.closest("article.card"); }
  function move(step) {
    var all = cards(); if (!all.length) return;
    var index = all.indexOf(current());
    var next = all[Math.max(0, Math.min(all.length - 1, index + step))] || all[0];
    next.focus(); next.scrollIntoView({block: "nearest"});
  }
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable || event.ctrlKey || event.metaKey || event.altKey) return;
    if (!document.querySelector("article.card")) return;
    var card = current();
    if (event.key === "j") { move(1); event.preventDefault(); return; }
    if (event.key === "k") { move(-1); event.preventDefault(); return; }
    if (!card) return;
    var target = card.querySelector('[data-key="' + event.key + '"]');
    if (!target) return;
    event.preventDefault();
    if (event.key === "r") { target.focus(); return; }
    target.click();
  });
})();

// A live connection that dropped (a restart, a network blip) missed the cards made and
// decided meanwhile: when it comes back, reload the board's cards, unless one is being edited.
(function () {
  if (window.aiosBoardResync) return;
  window.aiosBoardResync = true;
  var connectedBefore = false;
  document.body.addEventListener("htmx:wsOpen", function () {
    var reconnect = connectedBefore;
    connectedBefore = true;
    if (!reconnect || !document.querySelector("section.cards")) return;
    var editing = document.querySelector("article.card details.edit[open], article.card :focus:is(input, textarea)");
    if (editing) return;
    htmx.ajax("GET", window.location.href, {target: "#content", swap: "innerHTML"});
  });
})();

// Descriptions are edited in Trix; a description holds text, not files.
document.addEventListener("trix-file-accept", function (event) { event.preventDefault(); });

// "Select every low-risk card" for the bulk approval, including cards that arrived live.
document.addEventListener("change", function (event) {
  if (event.target.id !== "select-all") return;
  document.querySelectorAll('input[name="selected"][form="bulk-form"]').forEach(function (box) {
    box.checked = event.target.checked;
  });
});

// Review time counts attention, not presence: a card counts as opened once at least half of
// it is on screen, in a tab that is in front, within a few seconds of the person using the
// page (a key, a click, a scroll, a touch). A card pushed onto a board nobody is looking at
// is not opened until someone does look.
(function () {
  if (window.aiosBoardAttention) return;
  window.aiosBoardAttention = true;
  var ATTENTIVE_MS = 5000, lastInput = 0, onScreen = new Set(), reported = new Set();
  function attentive() { return document.visibilityState === "visible" && Date.now() - lastInput < ATTENTIVE_MS; }
  function report() {
    if (!attentive()) return;
    onScreen.forEach(function (card) {
      var url = card.dataset.openedUrl;
      if (!url || reported.has(url) || !card.isConnected) return;
      reported.add(url);
      htmx.ajax("POST", url, {swap: "none", source: card});
    });
  }
  var observer = new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) onScreen.add(entry.target); else onScreen.delete(entry.target);
    });
    report();
  }, {threshold: 0.5});
  function watch(root) {
    (root.querySelectorAll ? root : document).querySelectorAll("article.card[data-opened-url]").forEach(function (card) { observer.observe(card); });
    if (root.matches && root.matches("article.card[data-opened-url]")) observer.observe(root);
  }
  ["keydown", "pointerdown", "wheel", "touchstart", "scroll"].forEach(function (name) {
    document.addEventListener(name, function () { lastInput = Date.now(); report(); }, {passive: true, capture: true});
  });
  document.addEventListener("visibilitychange", report);
  document.addEventListener("htmx:load", function (event) { watch(event.detail.elt); });
  watch(document);
})();
