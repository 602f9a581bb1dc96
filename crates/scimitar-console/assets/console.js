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
