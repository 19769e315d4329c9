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
    if (tag === "input" || tag === "textarea" || tag === "select" || event.ctrlKey || event.metaKey || event.altKey) return;
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
