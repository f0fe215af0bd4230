// The book's latent explorer: the reference decoders, exported to ONNX by fvae_lib.export, run in the reader's
// browser by onnxruntime-web (WebAssembly, served by this site). One slider per latent, largest KL first; the
// picture is redrawn as a slider moves. Each pixel is round(255 * p), p the decoder's Bernoulli mean.
//
// A page asks for it with <div class="fvae-explorer"></div>. The files it needs lie beside this script:
// explorer/explorer.json and explorer/<model>.onnx, and ort/ (onnxruntime-web's script and .wasm).
(function () {
  "use strict";
  const script = document.currentScript;
  const here = new URL(".", script ? script.src : document.baseURI);
  const DATA = new URL("explorer/", here);
  const ORT = new URL("ort/", here);
  const SIZE = 64;
  const COLLAPSED_KL = 0.05; // nats: the traversals' rule for a latent that carries nothing (fvae_lib.plots)

  function element(tag, attrs, children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") el.textContent = v;
      else el.setAttribute(k, v);
    }
    for (const child of children || []) el.appendChild(child);
    return el;
  }

  function loadScript(url) {
    return new Promise((resolve, reject) => {
      const tag = element("script", { src: url });
      tag.onload = resolve;
      tag.onerror = () => reject(new Error("could not load " + url));
      document.head.appendChild(tag);
    });
  }

  function drawPixels(canvas, values, scale) {
    // values: SIZE * SIZE numbers, each in [0, 1] (scale 255) or already 0/1 characters (scale 255 too)
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(SIZE, SIZE);
    for (let i = 0; i < SIZE * SIZE; i++) {
      const v = Math.round(scale * values[i]);
      image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = v;
      image.data[4 * i + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
  }

  class Panel {
    // One model: its canvas, its sliders, and its ONNX session. Decodes run one at a time; a slider moved
    // while one runs is decoded next, so the picture always ends on the sliders' last values.
    constructor(model, session, bundle, fail) {
      this.model = model;
      this.session = session;
      this.fail = fail;
      this.code = model.codes[0].slice();
      this.busy = false;
      this.pending = false;
      this.draws = 0;
      this.canvas = element("canvas", { width: SIZE, height: SIZE, class: "fvae-canvas",
        "data-model": model.name, "aria-label": "decoded image, " + model.label });
      this.sliders = [];
      const rows = model.order.map((j) => {
        const kl = model.kl[j];
        const input = element("input", { type: "range", min: -bundle.limit, max: bundle.limit, step: bundle.step,
          value: this.code[j], "data-latent": j, "aria-label": "z" + j });
        const value = element("span", { class: "fvae-value" });
        const show = () => { value.textContent = this.code[j].toFixed(2); }; // the value decoded, not the slider's step
        show();
        input.addEventListener("input", () => { this.code[j] = Number(input.value); show(); this.decode().catch(this.fail); });
        this.sliders[j] = { input, show };
        const name = element("span", { class: "fvae-latent", text: "z" + j + " · " + kl.toFixed(kl < 0.1 ? 3 : 2) + " nats" +
          (kl < COLLAPSED_KL ? " (collapsed)" : "") });
        return element("label", { class: "fvae-row" + (kl < COLLAPSED_KL ? " fvae-collapsed" : "") }, [name, input, value]);
      });
      const title = element("div", { class: "fvae-title",
        text: model.label + " · " + model.iterations.toLocaleString("en") + " iterations" });
      this.root = element("div", { class: "fvae-panel" }, [title, this.canvas, element("div", { class: "fvae-sliders" }, rows)]);
    }

    setCode(code) {
      this.code = code.slice();
      this.sliders.forEach((s, j) => { s.input.value = this.code[j]; s.show(); });
      return this.decode();
    }

    async decode() {
      if (this.busy) { this.pending = true; return; }
      this.busy = true;
      try {
        do {
          this.pending = false;
          const code = this.code.slice();
          const z = new ort.Tensor("float32", Float32Array.from(code), [1, code.length]);
          const out = await this.session.run({ z });
          drawPixels(this.canvas, out.image.data, 255);
          this.canvas.dataset.code = JSON.stringify(code);
          this.canvas.dataset.draws = String(++this.draws);
        } while (this.pending);
      } finally {
        this.busy = false;
      }
    }
  }

  // onnxruntime-web, the explorer's data and each model's session are loaded once per page, however many
  // explorers it has.
  let runtime = null;
  const sessions = {};
  function loadRuntime() {
    runtime = runtime || (async () => {
      if (typeof ort === "undefined") await loadScript(new URL("ort.wasm.min.js", ORT).href);
      ort.env.wasm.wasmPaths = ORT.href;
      ort.env.wasm.numThreads = 1; // no cross-origin isolation on a static site, so no shared-memory threads
      ort.env.wasm.proxy = false;
      const response = await fetch(new URL("explorer.json", DATA));
      if (!response.ok) throw new Error("could not load explorer.json (HTTP " + response.status + ")");
      return response.json();
    })();
    return runtime;
  }
  function session(model) {
    sessions[model.file] = sessions[model.file] ||
      ort.InferenceSession.create(new URL(model.file, DATA).href, { executionProviders: ["wasm"] });
    return sessions[model.file];
  }

  async function start(root) {
    const status = element("p", { class: "fvae-status", text: "Loading the decoders…" });
    root.replaceChildren(status);
    if (location.protocol === "file:") {
      throw new Error("the explorer runs WebAssembly, which browsers do not load from a file:// page. " +
        "Serve the book instead: make book-serve, then open http://127.0.0.1:8000");
    }
    const bundle = await loadRuntime();
    const wanted = root.dataset.models ? root.dataset.models.split(",") : null; // e.g. data-models="betavae_b4"
    const fail = (err) => { status.textContent = "The explorer stopped: " + err.message; status.classList.add("fvae-error");
      root.dataset.ready = "failed"; console.warn("fvae explorer:", err); };
    const panels = [];
    for (const model of bundle.models.filter((m) => !wanted || wanted.includes(m.name))) {
      panels.push(new Panel(model, await session(model), bundle, fail));
    }
    if (!panels.length) throw new Error("no model of " + root.dataset.models + " in explorer.json");
    const picker = element("div", { class: "fvae-picker", role: "group", "aria-label": "start image" });
    bundle.images.forEach((image, i) => {
      const thumb = element("canvas", { width: SIZE, height: SIZE, class: "fvae-thumb" });
      drawPixels(thumb, Array.from(image.pixels.join(""), Number), 255);
      const button = element("button", { type: "button", class: "fvae-pick", "data-image": i, title: image.label },
        [thumb, element("span", { text: image.label })]);
      button.addEventListener("click", () => {
        picker.querySelectorAll("button").forEach((b) => b.classList.toggle("fvae-picked", b === button));
        panels.forEach((p) => p.setCode(p.model.codes[i]).catch(fail));
      });
      picker.appendChild(button);
    });
    picker.firstChild.classList.add("fvae-picked");
    const note = element("p", { class: "fvae-note", text: "Start from an image: each model starts at its encoder's " +
      "mean code for it. Sliders are ordered by each latent's KL to the prior (largest first); a latent under " +
      COLLAPSED_KL + " nats carries nothing and moving it changes nothing." });
    root.replaceChildren(picker, note, element("div", { class: "fvae-panels" }, panels.map((p) => p.root)), status);
    await Promise.all(panels.map((p) => p.decode()));
    status.textContent = "Decoded in this browser by onnxruntime-web " + (ort.env.versions ? ort.env.versions.web : "") +
      " (WebAssembly), from the reference models in reference/models.";
    root.dataset.ready = "true";
    root.fvaePanels = panels;
  }

  function startAll() {
    document.querySelectorAll(".fvae-explorer").forEach((root) => {
      start(root).catch((err) => {
        root.dataset.ready = "failed";
        root.replaceChildren(element("p", { class: "fvae-status fvae-error", text: "The explorer could not start: " + err.message }));
        console.warn("fvae explorer:", err);
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startAll);
  else startAll();
})();
