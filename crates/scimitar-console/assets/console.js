// Copy buttons: the only script of the console. Everything else works without it.
document.addEventListener('click', function (ev) {
  var btn = ev.target.closest('button[data-copy]');
  if (!btn) return;
  var field = document.getElementById(btn.getAttribute('data-copy'));
  if (!field) return;
  var done = function () {
    var old = btn.textContent;
    btn.textContent = 'Copied';
    btn.setAttribute('aria-live', 'polite');
    setTimeout(function () { btn.textContent = old; }, 2000);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
  } else {
    field.focus();
    field.select();
    try { document.execCommand('copy'); done(); } catch (e) { /* the text stays selected for Ctrl+C */ }
  }
});

// Mapping editor: a source object the job has read fills the preview's
// source object.
document.addEventListener('click', function (ev) {
  var btn = ev.target.closest('button[data-sample]');
  if (!btn) return;
  var field = document.getElementById('sample');
  if (field) field.value = btn.getAttribute('data-sample');
});

// Synchronization details: the running cycle's progress bar moves without
// a reload (the page shows the same numbers without the script).
(function () {
  var section = document.querySelector('[data-progress]');
  if (!section) return;
  var url = section.getAttribute('data-progress');
  var wasRunning = !!document.getElementById('cycle-progress');
  var tick = function () {
    fetch(url, { credentials: 'same-origin' }).then(function (r) { return r.json(); }).then(function (v) {
      if (v.running !== wasRunning) { window.location.reload(); return; }
      var bar = document.getElementById('cycle-progress');
      var nums = document.getElementById('cycle-numbers');
      if (bar && v.progress) {
        bar.max = v.progress.total;
        bar.value = v.progress.done;
        if (nums) nums.textContent = v.progress.done + ' of ' + v.progress.total + ' objects (' + v.progress.percent + '%) · ' + v.progress.rate + ' · ' + v.progress.eta;
      }
    }).catch(function () {});
  };
  setInterval(tick, 1000);
})();
