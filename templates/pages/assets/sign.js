// Kontor's signature pad and sign-page guide. No framework: pointer events draw on
// the canvas (mouse, finger, pen), the drawing is kept as a PNG data URL in a hidden
// input, "Next" moves to the next empty required field and hides once none is left,
// and each change is saved as a draft so closing the page loses nothing.
(function () {
  "use strict";

  function setupPad(fieldset, onChange) {
    var canvas = fieldset.querySelector("canvas.pad");
    var drawn = fieldset.querySelector('input[name="signature_drawn"]');
    var typed = fieldset.querySelector('input[name="signature_typed"]');
    var clear = fieldset.querySelector("[data-clear]");
    if (!canvas || !drawn) return;
    var context = canvas.getContext("2d");
    context.lineWidth = 3;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.strokeStyle = "#111827";
    var drawing = false;
    var marked = false;

    if (drawn.value) {
      var image = new Image();
      image.onload = function () { context.drawImage(image, 0, 0); };
      image.src = drawn.value;
    }

    function point(event) {
      var box = canvas.getBoundingClientRect();
      return {
        x: (event.clientX - box.left) * (canvas.width / box.width),
        y: (event.clientY - box.top) * (canvas.height / box.height)
      };
    }
    canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      drawing = true;
      var p = point(event);
      context.beginPath();
      context.moveTo(p.x, p.y);
      context.lineTo(p.x + 0.1, p.y + 0.1);
      context.stroke();
      marked = true;
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) return;
      var p = point(event);
      context.lineTo(p.x, p.y);
      context.stroke();
    });
    function finish() {
      if (!drawing) return;
      drawing = false;
      if (marked) {
        drawn.value = canvas.toDataURL("image/png");
        update();
        onChange(fieldset);
      }
    }
    canvas.addEventListener("pointerup", finish);
    canvas.addEventListener("pointercancel", finish);
    canvas.addEventListener("pointerleave", finish);
    if (clear) {
      clear.addEventListener("click", function () {
        context.clearRect(0, 0, canvas.width, canvas.height);
        drawn.value = "";
        marked = false;
        update();
        onChange(fieldset);
      });
    }
    if (typed) {
      typed.addEventListener("input", update);
      typed.addEventListener("change", function () { onChange(fieldset); });
    }
    function update() {
      var filled = drawn.value !== "" || (typed && typed.value.trim() !== "");
      fieldset.classList.toggle("empty", !filled);
      fieldset.dispatchEvent(new CustomEvent("signature-change", { bubbles: true }));
    }
  }

  function empty(element) {
    if (element.matches("fieldset")) return element.classList.contains("empty");
    if (element.type === "checkbox") return !element.checked;
    return element.value.trim() === "";
  }

  function setupForm(form) {
    var draftUrl = form.getAttribute("data-draft");
    var token = form.querySelector('input[name="csrf"]');
    var next = form.querySelector("#next-field");
    function required() {
      return Array.prototype.slice.call(
        form.querySelectorAll(".sign-field input[required], fieldset.signature[data-required]")
      );
    }
    function refreshNext() {
      if (!next) return;
      next.hidden = !required().some(empty);
    }
    var timer = null;
    function saveDraft() {
      if (!draftUrl || !token) return;
      clearTimeout(timer);
      timer = setTimeout(function () {
        var body = new URLSearchParams(new FormData(form));
        fetch(draftUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-Kontor-Draft": "1" },
          body: body
        }).catch(function () { /* the next change tries again */ });
      }, 400);
    }
    form.querySelectorAll("fieldset.signature").forEach(function (fieldset) {
      setupPad(fieldset, function () { refreshNext(); saveDraft(); });
    });
    form.addEventListener("input", refreshNext);
    form.addEventListener("change", function () { refreshNext(); saveDraft(); });
    form.addEventListener("signature-change", refreshNext);
    if (next) {
      next.addEventListener("click", function () {
        var first = required().filter(empty)[0];
        if (!first) { refreshNext(); return; }
        var target = first.matches("fieldset") ? first.querySelector("canvas") : first;
        first.scrollIntoView({ behavior: "smooth", block: "center" });
        if (target.tabIndex < 0 && target.tagName === "CANVAS") target.tabIndex = 0;
        target.focus({ preventScroll: true });
      });
    }
    refreshNext();
  }

  document.querySelectorAll("form.sign-form").forEach(setupForm);
  // A dialog the server opened becomes modal, so focus stays inside it.
  document.querySelectorAll("dialog[data-modal][open]").forEach(function (dialog) {
    if (typeof dialog.showModal === "function") {
      dialog.close();
      dialog.showModal();
    }
  });
})();
