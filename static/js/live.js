// Live pushes go to every page of the workspace; a page takes the parts it shows and drops
// the rest (a run row on the board, a card on the runs page) rather than logging
// htmx:oobErrorNoTarget for each.
htmx.defineExtension("live-targets", {
  transformResponse: function (text, xhr) {
    if (xhr) return text; // an answer to this page's own request: htmx swaps it as asked
    var template = document.createElement("template");
    template.innerHTML = text;
    Array.from(template.content.children).forEach(function (element) {
      if (!hasTarget(element)) element.remove();
    });
    return template.innerHTML;
  }
});

function hasTarget(element) {
  var swap = element.getAttribute("hx-swap-oob") || "true";
  var colon = swap.indexOf(":");
  if (colon > -1) return document.querySelector(swap.slice(colon + 1)) !== null;
  return Boolean(element.id) && document.getElementById(element.id) !== null;
}
