// The staff preview reloads itself when /version changes (a template, the config or a post).
(function () {
  var seen = null;
  setInterval(function () {
    fetch('/version').then(function (r) { return r.text(); }).then(function (v) {
      if (seen !== null && v !== seen) { location.reload(); }
      seen = v;
    }).catch(function () {});
  }, 1000);
})();
