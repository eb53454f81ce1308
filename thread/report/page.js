// The step slider: rebuild the live context at a step from the embedded token and prune lists.
// Live at step K = tokens written at steps <= K, less those pruned at steps <= K; each run of
// pruned tokens shows as one marker. One pass over the tokens per redraw, no text per step.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("trace-data").textContent);
  var slider = document.getElementById("step");
  var number = document.getElementById("step-number");
  var out = document.getElementById("live");
  var info = document.getElementById("live-info");
  var warning = document.getElementById("live-warning");
  var plot = document.getElementById("plot");
  var cursor = document.getElementById("cursor");
  var pruneSteps = data.prunes.map(function (p) { return p.step; });

  function countAtMost(sorted, value) {
    var lo = 0, hi = sorted.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (sorted[mid] <= value) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  function marker(count, prune) {
    var span = document.createElement("span");
    span.className = "marker";
    span.textContent = "\u27e6pruned " + count + " tokens: " + data.prunes[prune].label + "\u27e7";
    return span;
  }

  function liveContext(step) {
    var written = countAtMost(data.steps, step);
    var frag = document.createDocumentFragment();
    var texts = [], numLive = 0, numPruned = 0, runCount = 0, runPrune = -1;
    for (var i = 0; i < written; i++) {
      var p = data.pruned_by[i];
      if (p < 0 || data.prunes[p].step > step) {
        if (runCount) { frag.appendChild(marker(runCount, runPrune)); runCount = 0; }
        texts.push(data.texts[i]);
        numLive++;
        continue;
      }
      if (texts.length) { frag.appendChild(document.createTextNode(texts.join(""))); texts = []; }
      if (!runCount || data.prunes[p].step >= data.prunes[runPrune].step) runPrune = p;
      runCount++;
      numPruned++;
    }
    if (texts.length) frag.appendChild(document.createTextNode(texts.join("")));
    if (runCount) frag.appendChild(marker(runCount, runPrune));
    return { fragment: frag, numLive: numLive, numPruned: numPruned };
  }

  function recordedLive(step) {
    for (var s = step; s >= 0; s--) {
      if (data.recorded_live.hasOwnProperty(s)) return data.recorded_live[s];
    }
    return null;
  }

  function moveCursor(step) {
    var left = +plot.dataset.left, right = +plot.dataset.right, top = +plot.dataset.xTop;
    var x = left + (step / top) * (right - left);
    cursor.setAttribute("x1", x);
    cursor.setAttribute("x2", x);
  }

  function show(step) {
    step = Math.max(0, Math.min(data.last_step, Math.round(step) || 0));
    slider.value = step;
    number.value = step;
    var live = liveContext(step);
    out.replaceChildren(live.fragment);
    info.textContent = "step " + step + " of " + data.last_step + ": " + live.numLive +
      " live tokens, " + live.numPruned + " pruned";
    var recorded = recordedLive(step);
    warning.hidden = recorded === null || recorded === live.numLive;
    warning.textContent = "The trace recorded " + recorded + " live tokens at this step.";
    moveCursor(step);
  }

  var pending = null;
  function schedule(step) {
    if (pending === null) {
      window.requestAnimationFrame(function () { var s = pending; pending = null; show(s); });
    }
    pending = step;
  }

  slider.addEventListener("input", function () { schedule(+slider.value); });
  number.addEventListener("change", function () { show(+number.value); });
  document.getElementById("prev-prune").addEventListener("click", function () {
    var before = pruneSteps.filter(function (s) { return s < +slider.value; });
    if (before.length) show(before[before.length - 1]);
  });
  document.getElementById("next-prune").addEventListener("click", function () {
    var after = pruneSteps.filter(function (s) { return s > +slider.value; });
    if (after.length) show(after[0]);
  });
  plot.addEventListener("click", function (event) {
    var box = plot.getBoundingClientRect();
    var x = (event.clientX - box.left) * (plot.viewBox.baseVal.width / box.width);
    var left = +plot.dataset.left, right = +plot.dataset.right;
    show(((x - left) / (right - left)) * +plot.dataset.xTop);
  });

  show(data.last_step);
  var root = document.documentElement;
  if (!root.hasAttribute("data-check")) root.setAttribute("data-check", "ok");
})();
