// The review app's keys and mouse: the search box, a box drawn on a photo (a face the scan
// missed), the confirm queue (y / n / s), faces selected, split and made the cover by key.
// A file served by the app: no inline script and no inline handler (a strict CSP holds).
(function () {
  "use strict";

  const byId = (id) => document.getElementById(id);
  const handlers = {};
  const on = (key, fn) => { handlers[key] = fn; };

  function typing(target) {
    if (!target || !target.tagName) return false;
    if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    return target.tagName === "INPUT" && !["checkbox", "radio", "submit", "button"].includes(target.type);
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const fn = handlers[event.key];
    if (fn && fn(event) !== false) event.preventDefault();
  });

  // -- every page: find a person (/), undo (u) ---------------------------------------------
  const search = byId("search");
  if (search) {
    on("/", () => { search.focus(); search.select(); });
    const list = byId("search-names");
    let asked = "";
    search.addEventListener("input", () => {
      const query = search.value.trim();
      if (!query || query === asked || !list) return;
      asked = query;
      const url = "/search.json?" + new URLSearchParams({ q: query });
      fetch(url, { credentials: "same-origin" })
        .then((response) => (response.ok ? response.json() : []))
        .then((found) => {
          if (asked !== query) return;
          list.replaceChildren(...found.map((person) => {
            const option = document.createElement("option");
            option.value = person.name;
            return option;
          }));
        })
        .catch(() => {});
    });
  }
  const undo = byId("undo");
  if (undo) on("u", () => undo.click());

  // -- a person's page: go through the faces, select, split, cover, move, confirm ----------
  const split = byId("split");
  if (split) {
    const figures = Array.from(document.querySelectorAll("figure.face[data-face-id]"));
    let at = -1;
    const focus = (k) => {
      if (!figures.length) return;
      if (at >= 0) figures[at].classList.remove("focused");
      at = Math.max(0, Math.min(figures.length - 1, k));
      figures[at].classList.add("focused");
      const box = figures[at].querySelector('input[name="face"]');
      if (box) box.focus();
      figures[at].scrollIntoView({ block: "nearest" });
    };
    figures.forEach((figure, k) => figure.addEventListener("focusin", () => {
      if (at >= 0) figures[at].classList.remove("focused");
      at = k;
      figure.classList.add("focused");
    }));
    on("ArrowRight", () => focus(at + 1));
    on("ArrowLeft", () => focus(at < 0 ? 0 : at - 1));
    on("x", () => split.click());
    on("v", () => {
      const button = at >= 0 ? figures[at].querySelector(".set-cover") : null;
      if (!button) return false;
      button.click();
      return true;
    });
    const moveTo = byId("move-to");
    if (moveTo) on("m", () => moveTo.focus());
    const confirmLink = byId("confirm-link");
    if (confirmLink) on("c", () => { window.location.href = confirmLink.href; });
  }

  // -- the confirm queue: yes (y), no (n), skip (s), another face, grid or one -------------
  const queue = document.querySelector(".queue");
  if (queue) {
    const items = Array.from(queue.querySelectorAll("figure.candidate"));
    let at = 0;
    const current = (k) => {
      if (!items.length) return;
      items[at].classList.remove("current");
      at = Math.max(0, Math.min(items.length - 1, k));
      items[at].classList.add("current");
      items[at].scrollIntoView({ block: "nearest" });
    };
    items.forEach((item, k) => item.addEventListener("click", (event) => {
      if (event.target.closest("a, button")) return;
      current(k);
    }));
    const press = (selector) => () => {
      const target = items.length ? items[at].querySelector(selector) : null;
      if (!target) return false;
      target.click();
      return true;
    };
    on("y", press("button.yes"));
    on("n", press("button.no"));
    on("s", press("a.skip"));
    on("ArrowRight", () => current(at + 1));
    on("ArrowLeft", () => current(at - 1));
  }
  const toggle = byId("view-toggle");
  if (toggle) on("g", () => toggle.click());

  // -- a photo's page: the faces' boxes, and a box drawn with the mouse ------------------
  const canvas = byId("canvas");
  const section = byId("photo");
  if (canvas && section) {
    const width = Number(section.dataset.width);
    const height = Number(section.dataset.height);
    const place = (element, left, top, right, bottom) => {
      element.style.left = (100 * left) / width + "%";
      element.style.top = (100 * top) / height + "%";
      element.style.width = (100 * (right - left)) / width + "%";
      element.style.height = (100 * (bottom - top)) / height + "%";
    };
    canvas.querySelectorAll(".box[data-box]").forEach((element) => {
      const [left, top, right, bottom] = element.dataset.box.split(",").map(Number);
      place(element, left, top, right, bottom);
    });

    const image = byId("photo-img");
    const drawn = byId("drawn");
    const field = byId("box");
    const add = byId("add-face");
    const said = byId("box-text");
    let start = null;
    const point = (event) => {
      const rect = image.getBoundingClientRect();
      const x = Math.max(0, Math.min(rect.width, event.clientX - rect.left));
      const y = Math.max(0, Math.min(rect.height, event.clientY - rect.top));
      return [(x * width) / rect.width, (y * height) / rect.height];
    };
    const show = (a, b) => {
      const box = [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])].map(Math.round);
      place(drawn, ...box);
      drawn.hidden = false;
      return box;
    };
    const clear = () => {
      start = null;
      drawn.hidden = true;
      field.value = "";
      add.disabled = true;
      said.textContent = "Draw a box around a face the scan missed.";
    };
    image.addEventListener("mousedown", (event) => {
      if (event.button !== 0) return;
      event.preventDefault();
      start = point(event);
      show(start, start);
    });
    window.addEventListener("mousemove", (event) => {
      if (start) show(start, point(event));
    });
    window.addEventListener("mouseup", (event) => {
      if (!start) return;
      const box = show(start, point(event));
      start = null;
      if (box[2] - box[0] < 4 || box[3] - box[1] < 4) {
        clear();
        return;
      }
      field.value = box.join(",");
      add.disabled = false;
      said.textContent = "Box " + box.join(", ") + " (photo pixels): Enter adds the face, Esc draws again.";
      add.focus();
    });
    on("Escape", () => clear());
    on("Enter", () => {
      if (add.disabled) return false;
      add.click();
      return true;
    });
    const person = byId("add-person");
    if (person) on("p", () => person.focus());
  }

  // The keys work from now on (what a test waits for before it types).
  document.documentElement.dataset.keys = "ready";
})();
