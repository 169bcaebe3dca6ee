// The ID-photo page: reads the catalogue from /api/specs, posts the photo to /api/idphoto (JSON answer),
// shows every stage and offers the downloads. Plain JS, no library, nothing fetched from elsewhere.
"use strict";

const TEXT = {
  en: {
    title: "ID photo maker", subtitle: "Drop a photo, pick a size and a colour, download the ID photo. Nothing leaves this server.",
    drop: "Drop a photo here, or click to choose one", size: "Size", spec: "Standard", width: "Width", height: "Height",
    unit: "Unit", framing: "Framed like", dpi: "DPI", background: "Background", custom_colour: "Custom",
    output: "Output", max_kb: "File size limit (KB, empty: none)", layout: "Print sheet", none: "none",
    no_face_ok: "No face? Centre on the person instead of failing", advanced: "Matting", matting: "Method",
    tta: "Flip test-time augmentation", make: "Make ID photo", input: "Input", trimap: "Trimap", alpha: "Alpha",
    cutout: "Cut-out", idphoto: "ID photo", dl_idphoto: "Download ID photo", dl_cutout: "Download cut-out (PNG)",
    dl_sheet: "Download print sheet", timings: "Time per stage", report: "Compliance", rule: "Rule",
    value: "Value", allowed: "Allowed", api: "HTTP API", custom_size: "custom size…", keep: "none: keep the photo's framing",
    working: "Working…", no_photo: "Choose a photo first.", done: "Done in", copies: "copies",
    white: "white", blue: "blue", red: "red", gray: "gray", pass: "pass", fail: "fail",
    queue: "Queue wait", decode: "Decode", foreground: "Foreground", encode: "Encode", total: "Total",
    network: "The server did not answer", quality: "quality",
  },
  zh: {
    title: "证件照制作", subtitle: "拖入照片，选择尺寸和底色，下载证件照。照片不会离开本服务器。",
    drop: "把照片拖到这里，或点击选择", size: "尺寸", spec: "规格", width: "宽", height: "高",
    unit: "单位", framing: "构图参照", dpi: "分辨率 DPI", background: "底色", custom_colour: "自定义",
    output: "输出", max_kb: "文件大小上限（KB，留空不限）", layout: "排版打印", none: "无",
    no_face_ok: "检测不到人脸时按人像居中，而不报错", advanced: "抠图", matting: "方法",
    tta: "翻转测试增强", make: "生成证件照", input: "原图", trimap: "三分图", alpha: "透明度",
    cutout: "抠图", idphoto: "证件照", dl_idphoto: "下载证件照", dl_cutout: "下载抠图（PNG）",
    dl_sheet: "下载排版照", timings: "各步骤耗时", report: "合规检查", rule: "规则",
    value: "数值", allowed: "允许范围", api: "HTTP 接口", custom_size: "自定义尺寸…", keep: "无：保持原图构图",
    working: "处理中…", no_photo: "请先选择照片。", done: "完成，用时", copies: "张",
    white: "白底", blue: "蓝底", red: "红底", gray: "灰底", pass: "通过", fail: "不通过",
    queue: "排队", decode: "解码", foreground: "前景", encode: "编码", total: "合计",
    network: "服务器没有响应", quality: "质量",
  },
};

const $ = (id) => document.getElementById(id);
let lang = localStorage.getItem("lang") || ((navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en");
let catalogue = null;
let file = null;
let last = null;  // the last JSON answer, re-rendered on a language switch

function t(key) { return (TEXT[lang] && TEXT[lang][key]) || TEXT.en[key] || key; }

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $("lang").textContent = lang === "zh" ? "English" : "中文";
  if (catalogue) fillCatalogue();
  if (last) render(last);
}

function option(value, text) {
  const o = document.createElement("option");
  o.value = value; o.textContent = text;
  return o;
}

function fillCatalogue() {
  const spec = $("spec"), framing = $("framing");
  const chosen = spec.value || catalogue.defaults.spec, chosenFraming = framing.value || catalogue.defaults.spec;
  spec.replaceChildren(); framing.replaceChildren();
  for (const s of catalogue.specs) {
    spec.append(option(s.name, `${s.name} · ${s.description} (${s.width_px}×${s.height_px} px)`));
    framing.append(option(s.name, `${s.name} (${Math.round(s.head_ratio * 100)} %)`));
  }
  spec.append(option("custom", t("custom_size")));
  spec.append(option("none", t("keep")));
  spec.value = chosen; framing.value = chosenFraming;

  const sw = $("swatches");
  const checked = document.querySelector("input[name=bg]:checked");
  const current = checked ? checked.value : catalogue.defaults.bg;
  sw.replaceChildren();
  for (const [name, hex] of Object.entries(catalogue.colors)) {
    const label = document.createElement("label");
    label.className = "swatch";
    label.innerHTML = `<input type="radio" name="bg" value="${name}" id="bg-${name}"><i style="background:${hex}"></i><span></span>`;
    label.querySelector("span").textContent = t(name);
    label.querySelector("input").checked = name === current;
    sw.append(label);
  }
  if (current === "custom") $("bg-custom").checked = true;

  const matting = $("matting");
  const m = matting.value || catalogue.defaults.matting;
  matting.replaceChildren(...catalogue.matting.map((name) => option(name, name)));
  matting.value = m;
}

async function loadCatalogue() {
  const r = await fetch("/api/specs");
  catalogue = await r.json();
  $("dpi").value = catalogue.defaults.dpi;
  fillCatalogue();
}

function setFile(f) {
  file = f || null;
  $("file-name").textContent = file ? `${file.name} (${(file.size / 1024).toFixed(0)} KB)` : "";
}

function status(text, isError) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", !!isError);
}

function formData() {
  const fd = new FormData();
  fd.append("photo", file, file.name);
  const spec = $("spec").value;
  if (spec === "custom") {
    fd.append("spec", $("framing").value);
    fd.append($("custom-unit").value === "mm" ? "size_mm" : "size_px", `${$("custom-w").value} ${$("custom-h").value}`);
  } else {
    fd.append("spec", spec);
  }
  const bg = document.querySelector("input[name=bg]:checked");
  fd.append("bg", !bg ? "white" : bg.value === "custom" ? $("bg-colour").value : bg.value);
  fd.append("dpi", $("dpi").value);
  fd.append("max_kb", $("max-kb").value);
  fd.append("layout", $("layout").value);
  fd.append("no_face_ok", $("no-face-ok").checked ? "true" : "false");
  fd.append("matting", $("matting").value);
  fd.append("tta", $("tta").value);
  return fd;
}

function dataUrl(data, kind) {
  return data ? `data:${last.media_types[kind]};base64,${data}` : "";
}

function render(res) {
  $("results").hidden = false;
  $("out-input").src = file ? URL.createObjectURL(file) : $("out-input").src;
  for (const kind of ["trimap", "alpha", "cutout", "idphoto"]) $(`out-${kind}`).src = dataUrl(res.images[kind], kind);
  $("idphoto-info").textContent = `${res.width}×${res.height} px · ${res.dpi} DPI · ${res.kb} KB · ${t("quality")} ${res.quality}`;
  $("dl-idphoto").href = dataUrl(res.images.idphoto, "idphoto");
  $("dl-cutout").href = dataUrl(res.images.cutout, "cutout");
  const sheet = $("dl-sheet");
  sheet.hidden = !res.images.sheet;
  if (res.images.sheet) {
    sheet.href = dataUrl(res.images.sheet, "sheet");
    sheet.textContent = `${t("dl_sheet")} (${res.copies} ${t("copies")})`;
  }
  const notes = $("notes");
  notes.replaceChildren(...res.notes.map((n) => { const li = document.createElement("li"); li.textContent = n; return li; }));

  const rows = Object.entries(res.timings).map(([stage, s]) => {
    const tr = document.createElement("tr");
    tr.innerHTML = "<td></td><td class=num></td>";
    tr.children[0].textContent = t(stage);
    tr.children[1].textContent = `${(s * 1000).toFixed(0)} ms`;
    return tr;
  });
  $("timings").tBodies[0].replaceChildren(...rows);

  // The compliance report, when the server has one: rule → {value, allowed, pass}.
  const report = $("report");
  report.hidden = !res.report;
  if (res.report) {
    const fmt = (v) => Array.isArray(v) ? v.map(fmt).join(" – ") : typeof v === "number" ? +v.toFixed(3) : String(v);
    report.tBodies[0].replaceChildren(...Object.entries(res.report).map(([rule, r]) => {
      const tr = document.createElement("tr");
      tr.className = r.pass ? "pass" : "fail";
      tr.innerHTML = "<td></td><td class=num></td><td></td><td></td>";
      tr.children[0].textContent = rule;
      tr.children[1].textContent = fmt(r.value);
      tr.children[2].textContent = fmt(r.allowed);
      tr.children[3].textContent = r.pass ? `✓ ${t("pass")}` : `✗ ${t("fail")}`;
      return tr;
    }));
  }
}

async function submit(ev) {
  ev.preventDefault();
  if (!file) { status(t("no_photo"), true); return; }
  const button = $("make");
  button.disabled = true;
  status(t("working"));
  try {
    const r = await fetch("/api/idphoto", { method: "POST", body: formData(), headers: { Accept: "application/json" } });
    const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
    if (!r.ok) {
      status(body.error || `HTTP ${r.status}`, true);
      return;
    }
    last = body;
    render(body);
    status(`${t("done")} ${body.timings.total.toFixed(2)} s`);
  } catch (e) {
    status(`${t("network")}: ${e.message}`, true);
  } finally {
    button.disabled = false;
  }
}

function setUp() {
  $("lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("lang", lang); applyLanguage(); });
  $("photo-input").addEventListener("change", (e) => setFile(e.target.files[0]));
  const drop = $("drop");
  for (const name of ["dragenter", "dragover"]) drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const name of ["dragleave", "drop"]) drop.addEventListener(name, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer.files.length) setFile(e.dataTransfer.files[0]); });
  $("spec").addEventListener("change", () => { $("custom").hidden = $("spec").value !== "custom"; });
  $("bg-colour").addEventListener("input", () => { $("bg-custom").checked = true; });
  $("form").addEventListener("submit", submit);
  applyLanguage();
  loadCatalogue().catch((e) => status(`${t("network")}: ${e.message}`, true));
}

setUp();
