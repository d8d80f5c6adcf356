// edge-finer serve: the page. Plain JavaScript, no framework, no build step, nothing fetched
// but this server's own API. The API's offsets are Python string indices (code points); the
// page converts them to JavaScript's UTF-16 indices only to draw, and sends them back unchanged.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  // a larger text is sent in pieces of about this many characters (cut at line ends), so that
  // progress shows and Cancel stops between pieces; ?chunk=N changes it (tests, a slow Pi)
  const CHUNK_CHARS = Math.max(100, Number(new URLSearchParams(location.search).get("chunk")) || 50000);
  const DETECT_SAMPLE = 100000;   // characters the language is detected from, for such a text
  const RETRIES = 5;              // 503 answers waited out (Retry-After) before giving up
  const COLORS = 12;

  const state = {
    info: null,                      // /v1/bundles
    docs: [{ name: "text", text: "", result: null }],
    current: 0,
    granularity: "fine",
    view: "text",
    abort: null,
  };

  class ApiError extends Error {
    constructor(status, message, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  // -- talking to the server ---------------------------------------------------------------

  const sleep = (ms, signal) => new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    if (signal) signal.addEventListener("abort", () => { clearTimeout(t); reject(new DOMException("cancelled", "AbortError")); }, { once: true });
  });

  async function request(path, body, signal) {
    for (let attempt = 0; ; attempt++) {
      const init = body === undefined ? { signal } : {
        method: "POST", signal, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      };
      const res = await fetch(path, init);
      if (res.ok) return res;
      let message = res.statusText;
      try { message = (await res.json()).message || message; } catch (_) { /* not JSON */ }
      const retryAfter = Number(res.headers.get("Retry-After") || 1);
      if (res.status === 503 && attempt < RETRIES) {
        setStatus(`The server is busy; trying again in ${retryAfter} s…`);
        await sleep(retryAfter * 1000, signal);
        continue;
      }
      throw new ApiError(res.status, message, retryAfter);
    }
  }
  const getJSON = async (path, signal) => (await request(path, undefined, signal)).json();
  const postJSON = async (path, body, signal) => (await request(path, body, signal)).json();

  // -- offsets: code points (API) <-> UTF-16 (JavaScript) ----------------------------------

  /** UTF-16 index of each code point index of `text` (null when they are the same). */
  function utf16Index(text) {
    if (!/[\uD800-\uDFFF]/.test(text)) return null;
    const map = [];
    for (let i = 0; i < text.length; i++) {
      map.push(i);
      const c = text.charCodeAt(i);
      if (c >= 0xD800 && c <= 0xDBFF && i + 1 < text.length) {
        const d = text.charCodeAt(i + 1);
        if (d >= 0xDC00 && d <= 0xDFFF) i++;
      }
    }
    map.push(text.length);
    return map;
  }
  const codePoints = (text) => { const m = utf16Index(text); return m ? m.length - 1 : text.length; };

  /** Pieces of at most about CHUNK_CHARS, cut at line ends (else at a space), never inside a pair. */
  function chunks(text) {
    const out = [];
    let start = 0;
    while (start < text.length) {
      let end = Math.min(text.length, start + CHUNK_CHARS);
      if (end < text.length) {
        const nl = text.lastIndexOf("\n", end - 1);
        if (nl >= start) end = nl + 1;
        else {
          const sp = text.lastIndexOf(" ", end - 1);
          if (sp > start) end = sp + 1;
          else if (/[\uD800-\uDBFF]/.test(text[end - 1])) end -= 1;
        }
      }
      out.push({ start, text: text.slice(start, end) });
      start = end;
    }
    return out;
  }

  // -- bundles, languages, taxonomies --------------------------------------------------------

  function option(select, value, label) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    select.append(o);
  }

  function fillBundles() {
    const lang = $("lang").value, tax = $("taxonomy").value, keep = $("bundle").value;
    const select = $("bundle");
    select.length = 1;
    for (const b of state.info.bundles) {
      if (lang && b.language !== lang) continue;
      if (tax && b.taxonomy !== tax) continue;
      const nc = b.non_commercial ? ", non-commercial" : "";
      option(select, b.name, `${b.name} (${b.language_name || b.language}, ${b.taxonomy}${nc})`);
    }
    select.value = [...select.options].some((o) => o.value === keep) ? keep : "";
  }

  async function loadBundles() {
    try {
      state.info = await getJSON("/v1/bundles");
    } catch (err) {
      showError(`Cannot list the installed bundles: ${err.message}`);
      return;
    }
    $("version").textContent = `edge-finer ${state.info.version}`;
    for (const l of state.info.languages) option($("lang"), l.code, `${l.name || l.code} (${l.code})`);
    for (const t of state.info.taxonomies) option($("taxonomy"), t.name, t.name);
    fillBundles();
    if (!state.info.bundles.length) showError("No bundles are installed: install one with `edge-finer bundles install`.");
    document.body.dataset.ready = "1";
  }

  // -- input: text and files ---------------------------------------------------------------

  function currentDoc() { return state.docs[state.current]; }

  function showDocs() {
    const select = $("doc");
    select.length = 0;
    state.docs.forEach((d, i) => option(select, String(i), d.name));
    select.value = String(state.current);
    select.hidden = $("doc-label").hidden = state.docs.length < 2;
    $("text").value = currentDoc().text;
  }

  async function readFiles(files) {
    const docs = [], bad = [];
    for (const f of files) {
      try {
        const text = new TextDecoder("utf-8", { fatal: true }).decode(await f.arrayBuffer());
        docs.push({ name: f.name, text: text.replace(/^\uFEFF/, ""), result: null });
      } catch (_) {
        bad.push(f.name);
      }
    }
    clearMessages();
    if (bad.length) showError(`Not UTF-8 text, skipped: ${bad.join(", ")}`);
    if (!docs.length) return;
    state.docs = docs;
    state.current = 0;
    showDocs();
    showResult();
    setStatus(`${docs.length} file${docs.length > 1 ? "s" : ""} loaded; press Annotate.`);
  }

  // -- annotating ---------------------------------------------------------------------------

  function options() {
    const threshold = $("threshold").value.trim();
    const t = threshold === "" ? null : Number(threshold);
    if (t !== null && !(t >= 0 && t <= 1)) throw new ApiError(400, "The threshold must be a number from 0 to 1 (or empty: the bundle's own).");
    return {
      lang: $("lang").value || null, taxonomy: $("taxonomy").value || null,
      bundle: $("bundle").value || null, threshold: t,
    };
  }

  async function annotateDoc(doc, opts, signal, progress) {
    const pieces = chunks(doc.text);
    let routing = null;
    const args = { ...opts };
    if (!opts.lang && !opts.bundle) {
      const det = await postJSON("/v1/detect", { text: doc.text.slice(0, DETECT_SAMPLE), taxonomy: opts.taxonomy }, signal);
      routing = det.segments[0];
      if (!routing || !routing.bundle) {
        doc.result = { entities: [], routing: routing || { language: "unknown" }, bundles: [], complete: true };
        return;
      }
      if (pieces.length > 1) args.bundle = routing.bundle;  // every piece with the same bundle
    }
    const entities = [];
    let bundles = [];
    let warnings = [];
    let cpOffset = 0;
    doc.result = { entities, routing, bundles, warnings, complete: false, done16: 0 };
    for (const piece of pieces) {
      const ans = await postJSON("/v1/annotate", { text: piece.text, ...args, granularity: "fine" }, signal);
      const map = utf16Index(piece.text);
      for (const e of ans.entities) {
        entities.push({
          ...e, start: e.start + cpOffset, end: e.end + cpOffset,
          s16: piece.start + (map ? map[e.start] : e.start), e16: piece.start + (map ? map[e.end] : e.end),
        });
      }
      if (!doc.result.routing || pieces.length === 1) doc.result.routing = ans.routing;
      if (!bundles.length) bundles.push(...ans.bundles);
      warnings = warnings.concat(ans.warnings.filter((w) => !warnings.includes(w)));
      doc.result.warnings = warnings;
      cpOffset += codePoints(piece.text);
      doc.result.done16 = piece.start + piece.text.length;
      progress(piece.text.length);
    }
    doc.result.complete = true;
  }

  async function run() {
    if (state.abort) return;
    clearMessages();
    currentDoc().text = $("text").value;
    const docs = state.docs.filter((d) => d.text.trim());
    if (!docs.length) { showError("Paste or type a text, or drop a text file, first."); return; }
    let opts;
    try { opts = options(); } catch (err) { showError(err.message); return; }
    const total = docs.reduce((n, d) => n + d.text.length, 0);
    let done = 0;
    const ctl = new AbortController();
    state.abort = ctl;
    setBusy(true);
    const progress = (n) => {
      done += n;
      $("progress").value = total ? done / total : 1;
      $("progress-label").textContent = `${Math.floor((100 * done) / total)} %`;
    };
    progress(0);
    try {
      for (const doc of state.docs) doc.result = null;
      for (const doc of docs) {
        await annotateDoc(doc, opts, ctl.signal, progress);
        if (doc === currentDoc()) showResult();
      }
      const n = docs.reduce((k, d) => k + d.result.entities.length, 0);
      setStatus(`${n} entit${n === 1 ? "y" : "ies"} found.`);
    } catch (err) {
      if (err.name === "AbortError") {
        setStatus(`Cancelled at ${Math.floor((100 * done) / total)} %: the entities found so far are shown.`);
      } else {
        showError(err.message);
      }
    } finally {
      state.abort = null;
      setBusy(false);
      showResult();
    }
  }

  function cancel() { if (state.abort) state.abort.abort(); }

  function setBusy(busy) {
    $("run").disabled = busy;
    $("cancel").disabled = !busy;
    $("progress-box").hidden = !busy;
    document.body.classList.toggle("busy", busy);
    document.body.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // -- showing the result ------------------------------------------------------------------

  const labelOf = (e) => (state.granularity === "coarse" ? e.coarse_label || e.label : e.label);

  function colorClasses(entities) {
    const order = new Map();
    for (const e of entities) {
      const l = labelOf(e);
      if (!order.has(l)) order.set(l, order.size % COLORS);
    }
    return order;
  }

  function describeRouting(result, doc) {
    const r = result.routing || {};
    const b = result.bundles && result.bundles[0];
    const langName = (code) => {
      const l = state.info && state.info.languages.find((x) => x.code === code);
      return l && l.name ? `${l.name} (${code})` : code;
    };
    if (!r.bundle && !b) {
      const why = (r.reason || "").replace(/;?\s*pass --lang to choose\.?/, "");
      return `Language: unknown${why ? ` (${why})` : ""}. Choose the language above if you know it.`;
    }
    const by = { script: "detected from its script", "lang argument": "chosen",
                 "bundle argument": "given by the bundle chosen" }[r.by] || (r.by ? `detected by ${r.by}` : "");
    let s = `Language: ${langName(r.language || (b && b.language))}${by ? `, ${by}` : ""}`;
    if (r.confidence !== undefined && r.by !== "lang argument" && r.by !== "bundle argument") s += ` (confidence ${Number(r.confidence).toFixed(2)})`;
    if (b) s += `. Bundle ${b.name} (${b.taxonomy}, ${b.licence}), threshold ${b.threshold}.`;
    if (state.docs.length > 1) s = `${doc.name}: ${s}`;
    return s;
  }

  function renderText(doc, result, colors) {
    const box = $("highlighted");
    const frag = document.createDocumentFragment();
    const text = doc.text;
    let at = 0;
    result.entities.forEach((e, i) => {
      const s = e.s16 !== undefined ? e.s16 : e.start, t = e.e16 !== undefined ? e.e16 : e.end;
      if (s < at) return;  // overlapping spans are never produced; draw the first
      if (s > at) frag.append(text.slice(at, s));
      const m = document.createElement("mark");
      const label = labelOf(e);
      m.className = `ent c${colors.get(label)}`;
      m.tabIndex = 0;
      m.dataset.i = String(i);
      m.dataset.label = label;
      m.dataset.start = String(e.start);
      m.dataset.end = String(e.end);
      const group = state.granularity === "fine" && e.coarse_label && e.coarse_label !== e.label ? ` (${e.coarse_label})` : "";
      m.dataset.tip = `${label}${group} · score ${Number(e.score).toFixed(3)}`;
      m.title = m.dataset.tip;
      m.textContent = text.slice(s, t);
      frag.append(m);
      at = t;
    });
    if (at < text.length) frag.append(text.slice(at));
    box.replaceChildren(frag);
    const lang = result.routing && result.routing.language;
    if (lang && lang !== "unknown") box.lang = lang; else box.removeAttribute("lang");
  }

  function renderTable(result, colors) {
    const body = $("table").tBodies[0];
    const rows = result.entities.map((e, i) => {
      const tr = document.createElement("tr");
      const label = labelOf(e);
      const cells = [String(i + 1), e.text, label, e.coarse_label || e.label, Number(e.score).toFixed(3), String(e.start), String(e.end)];
      cells.forEach((c, k) => {
        const td = document.createElement("td");
        if (k === 1) td.dir = "auto";
        if (k === 0 || k >= 4) td.className = "num";
        if (k === 2) {
          const sw = document.createElement("span");
          sw.className = `swatch c${colors.get(label)}`;
          sw.setAttribute("aria-hidden", "true");
          td.append(sw);
        }
        td.append(c);
        tr.append(td);
      });
      return tr;
    });
    body.replaceChildren(...rows);
  }

  function renderLegend(result, colors) {
    const counts = new Map(), groups = new Map();
    for (const e of result.entities) {
      counts.set(labelOf(e), (counts.get(labelOf(e)) || 0) + 1);
      if (state.granularity === "fine" && e.coarse_label && e.coarse_label !== e.label) groups.set(e.label, e.coarse_label);
    }
    const items = [...colors.entries()].map(([label, c]) => {
      const li = document.createElement("li");
      const sw = document.createElement("span");
      sw.className = `swatch c${c}`;
      sw.setAttribute("aria-hidden", "true");
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = `×${counts.get(label)}`;
      li.dataset.label = label;
      li.append(sw, groups.has(label) ? `${label} (${groups.get(label)})` : label, " ", count);
      return li;
    });
    $("legend").replaceChildren(...items);
  }

  function showResult() {
    const doc = currentDoc();
    const result = doc.result;
    $("result").hidden = !result;
    if (!result) return;
    const colors = colorClasses(result.entities);
    let line = describeRouting(result, doc);
    if (result.warnings && result.warnings.length) line += ` Warning: ${result.warnings.join("; ")}`;
    if (!result.complete && result.done16 !== undefined) line += ` Only the first ${Math.floor((100 * result.done16) / Math.max(1, doc.text.length))} % was annotated.`;
    $("detected").textContent = line;
    renderLegend(result, colors);
    renderText(doc, result, colors);
    renderTable(result, colors);
    $("highlighted").hidden = state.view !== "text";
    $("table-wrap").hidden = state.view !== "table";
    for (const b of document.querySelectorAll("[data-format]")) b.disabled = !!state.abort;
    document.body.dataset.entities = String(result.entities.length);
  }

  // -- downloads (written by the server, in the CLI's formats) ------------------------------

  async function download(format) {
    const doc = currentDoc();
    if (!doc.result) return;
    clearMessages();
    try {
      const res = await request("/v1/export", {
        text: doc.text, format, granularity: state.granularity, source: doc.name,
        entities: doc.result.entities.map(({ start, end, text, label, coarse_label, score }) =>
          (coarse_label === undefined ? { start, end, text, label, score } : { start, end, text, label, coarse_label, score })),
      });
      const cd = res.headers.get("Content-Disposition") || "";
      const m = /filename\*=UTF-8''([^;]+)/.exec(cd);
      const name = m ? decodeURIComponent(m[1]) : `${doc.name}.${format}`;
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement("a");
      a.href = url;
      a.download = name;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      setStatus(`Saved ${name}.`);
    } catch (err) {
      showError(`Download failed: ${err.message}`);
    }
  }

  // -- messages ------------------------------------------------------------------------------

  function setStatus(text) { $("status").textContent = text; }
  function showError(text) { $("error").textContent = text; }
  function clearMessages() { setStatus(""); showError(""); }

  // -- wiring --------------------------------------------------------------------------------

  function init() {
    $("run").addEventListener("click", run);
    $("cancel").addEventListener("click", cancel);
    $("text").addEventListener("input", () => {
      const doc = currentDoc();
      doc.text = $("text").value;
      if (doc.result && !state.abort) { doc.result = null; showResult(); }
    });
    document.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(); }
      else if (ev.key === "Escape" && state.abort) { ev.preventDefault(); cancel(); }
    });
    $("lang").addEventListener("change", fillBundles);
    $("taxonomy").addEventListener("change", fillBundles);
    $("doc").addEventListener("change", () => {
      currentDoc().text = $("text").value;
      state.current = Number($("doc").value);
      $("text").value = currentDoc().text;
      showResult();
    });
    $("files").addEventListener("change", (ev) => { readFiles([...ev.target.files]); ev.target.value = ""; });
    for (const r of document.querySelectorAll("input[name=granularity]")) {
      r.addEventListener("change", () => { state.granularity = r.value; showResult(); });
    }
    for (const r of document.querySelectorAll("input[name=view]")) {
      r.addEventListener("change", () => { state.view = r.value; showResult(); });
    }
    for (const b of document.querySelectorAll("[data-format]")) {
      b.addEventListener("click", () => download(b.dataset.format));
    }
    const drop = $("drop");
    const hasFiles = (ev) => ev.dataTransfer && [...ev.dataTransfer.types].includes("Files");
    document.addEventListener("dragover", (ev) => { if (hasFiles(ev)) { ev.preventDefault(); drop.classList.add("dragging"); } });
    document.addEventListener("dragleave", () => drop.classList.remove("dragging"));
    document.addEventListener("drop", (ev) => {
      drop.classList.remove("dragging");
      if (!hasFiles(ev)) return;
      ev.preventDefault();
      readFiles([...ev.dataTransfer.files]);
    });
    loadBundles();
  }

  init();
})();
