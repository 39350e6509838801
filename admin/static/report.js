// The grid worker's report page: place from the phone or a tap on the grid map, the "already
// reported?" check before saving, and a draft that survives a flaky connection (kept in the
// browser with its draft id until the hub has it; a resubmission of the same id is answered with
// the first result, never a second report). Messages come translated from the form's data-msg-*.
(function () {
  "use strict";
  var form = document.getElementById("report-form");
  if (!form) { return; }
  var KEY = "gridhub-report-draft";
  var $ = function (id) { return document.getElementById(id); };
  var msg = function (name) { return form.getAttribute("data-msg-" + name) || ""; };
  var lat = $("report-lat"), lng = $("report-lng"), source = $("report-source"), attach = $("report-attach-to");
  var category = $("report-category"), text = $("report-text"), clientId = $("report-client-id");
  var status = $("report-status"), placeStatus = $("report-place-status"), map = $("report-map");
  var submit = $("report-submit"), retry = $("report-retry");
  var fields = [category, text, lat, lng, source, attach, clientId];

  function saveDraft() {
    var draft = {};
    fields.forEach(function (f) { draft[f.name] = f.value; });
    try { localStorage.setItem(KEY, JSON.stringify(draft)); } catch (e) { /* private mode: no draft */ }
  }

  function restoreDraft() {
    var raw = null;
    try { raw = localStorage.getItem(KEY); } catch (e) { return; }
    if (!raw || text.value || lat.value) { return; }  // the server kept the values (a refusal)
    var draft;
    try { draft = JSON.parse(raw); } catch (e) { return; }
    if (!draft || !draft.text && !draft.lat) { return; }
    fields.forEach(function (f) { if (typeof draft[f.name] === "string") { f.value = draft[f.name]; } });
    status.textContent = msg("restored");
  }

  function placed() { return lat.value.trim() !== "" && lng.value.trim() !== ""; }

  function showMarker() {
    if (!map || !placed()) { return; }
    var kx = parseFloat(map.dataset.kx), ky = parseFloat(map.dataset.ky);
    var x = (parseFloat(lng.value) - parseFloat(map.dataset.lng0)) * kx;
    var y = (parseFloat(map.dataset.lat1) - parseFloat(lat.value)) * ky;
    var marker = $("report-marker");
    marker.setAttribute("cx", x.toFixed(1));
    marker.setAttribute("cy", y.toFixed(1));
  }

  function setPlace(la, ln, how, words) {
    lat.value = la.toFixed(6);
    lng.value = ln.toFixed(6);
    source.value = how;
    placeStatus.textContent = words;
    attach.value = "";
    showMarker();
    saveDraft();
    checkNearby();
  }

  $("report-gps").addEventListener("click", function () {
    if (!navigator.geolocation) { placeStatus.textContent = msg("no-gps"); return; }
    placeStatus.textContent = msg("locating");
    navigator.geolocation.getCurrentPosition(function (pos) {
      // the browser's Geolocation API gives WGS-84, the datum the hub expects from a phone
      setPlace(pos.coords.latitude, pos.coords.longitude, "gps", msg("located"));
    }, function () { placeStatus.textContent = msg("no-gps"); }, {enableHighAccuracy: true, timeout: 15000});
  });

  if (map) {
    map.addEventListener("click", function (evt) {
      var pt = map.createSVGPoint();
      pt.x = evt.clientX;
      pt.y = evt.clientY;
      var p = pt.matrixTransform(map.getScreenCTM().inverse());
      var ln = parseFloat(map.dataset.lng0) + p.x / parseFloat(map.dataset.kx);
      var la = parseFloat(map.dataset.lat1) - p.y / parseFloat(map.dataset.ky);
      Array.prototype.forEach.call(map.querySelectorAll("path.here"), function (el) { el.classList.remove("here"); });
      if (evt.target && evt.target.tagName === "path") { evt.target.classList.add("here"); }
      setPlace(la, ln, "map", msg("tapped"));
    });
  }

  function chooseCase(number, li) {
    attach.value = number;
    Array.prototype.forEach.call($("report-nearby-list").children, function (el) { el.classList.remove("chosen"); });
    if (li) { li.classList.add("chosen"); }
    saveDraft();
  }

  function checkNearby() {
    var box = $("report-nearby"), list = $("report-nearby-list"), intro = $("report-nearby-intro");
    if (!placed() || !category.value) { box.hidden = true; return; }
    var url = form.dataset.nearbyUrl + "?lat=" + encodeURIComponent(lat.value) + "&lng=" +
      encodeURIComponent(lng.value) + "&category=" + encodeURIComponent(category.value);
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (data) {
      list.textContent = "";
      var items = data.items || [];
      box.hidden = false;
      intro.textContent = items.length ? msg("nearby") : msg("none");
      items.forEach(function (c) {
        var li = document.createElement("li");
        li.id = "nearby-" + c.number;
        var a = document.createElement("a");
        a.href = c.url;
        a.target = "_blank";
        a.textContent = c.number + " " + c.category + " · " + c.distance_m + " " + msg("metres");
        var title = document.createElement("span");
        title.className = "muted";
        title.textContent = c.title;
        var b = document.createElement("button");
        b.type = "button";
        b.className = "attach";
        b.textContent = msg("attach");
        b.addEventListener("click", function () { chooseCase(c.number, li); });
        li.appendChild(a);
        li.appendChild(title);
        li.appendChild(b);
        list.appendChild(li);
        if (attach.value === c.number) { li.classList.add("chosen"); }
      });
      if (items.length) {
        var li = document.createElement("li");
        var b = document.createElement("button");
        b.type = "button";
        b.id = "report-new-case";
        b.textContent = msg("new");
        b.addEventListener("click", function () { chooseCase("", li); });
        li.appendChild(b);
        list.appendChild(li);
      }
    }).catch(function () { box.hidden = true; });
  }

  function send() {
    if (!placed()) { status.textContent = msg("need-place"); return; }
    submit.disabled = true;
    retry.hidden = true;
    status.textContent = msg("sending");
    fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                        headers: {"X-Requested-With": "fetch"}})
      .then(function (r) {
        if ((r.headers.get("Content-Type") || "").indexOf("application/json") < 0) {
          // the sign-in page (the session ended) or an error page: nothing was stored
          var e = new Error("not json");
          e.signIn = r.redirected && r.url.indexOf("/console/login") >= 0;
          throw e;
        }
        return r.json().then(function (body) { return {status: r.status, body: body}; });
      })
      .then(function (answer) {
        if (answer.body.ok) {
          try { localStorage.removeItem(KEY); } catch (e) { /* nothing kept */ }
          window.location.assign(answer.body.url);
          return;
        }
        submit.disabled = false;
        status.textContent = answer.body.message || String(answer.status);
        status.setAttribute("role", "alert");
      })
      .catch(function (err) {
        // no answer: the hub may or may not have it; the same draft id makes a retry safe
        saveDraft();
        submit.disabled = false;
        retry.hidden = false;
        status.textContent = err && err.signIn ? msg("signin") : msg("offline");
        status.setAttribute("role", "alert");
      });
  }

  form.addEventListener("submit", function (evt) { evt.preventDefault(); send(); });
  retry.addEventListener("click", send);
  [category, text, lat, lng].forEach(function (f) { f.addEventListener("change", saveDraft); });
  text.addEventListener("input", saveDraft);
  category.addEventListener("change", checkNearby);
  lat.addEventListener("change", function () { showMarker(); checkNearby(); });
  lng.addEventListener("change", function () { showMarker(); checkNearby(); });
  restoreDraft();
  showMarker();
  checkNearby();
}());
