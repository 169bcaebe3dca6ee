// The ID-photo page: reads the catalogue from /api/specs, posts the photo to /api/idphoto (JSON answer),
// shows every stage and offers the downloads. Plain JS, no library, nothing fetched from elsewhere.
"use strict";

const TEXT = {
  en: {
    title: "ID photo maker", subtitle: "Drop a photo, pick a size and a colour, download the ID photo. Nothing leaves this server.",
    drop: "Drop a photo here, or click to choose one", size: "Size", spec: "Standard", width: "Width", height: "Height",
    unit: "Unit", framing: "Framed like", dpi: "DPI", background: "Background", custom_colour: "Custom",
    refused: "No ID photo made from this photo",
    guide_title: "How to get a photo that is accepted",
    guide_1: "One person, facing the camera, head upright, both eyes open and visible.",
    guide_2: "The whole head and the shoulders in the photo, with some room above the hair.",
    guide_3: "Nothing on the face: no sunglasses, mask, hand, phone or microphone.",
    guide_4: "Then choose the standard and the background on the left and press the button. A photo that can't make a usable ID photo is refused, with the reason.",
    retouch: "Retouching (the person only; off at 0)", brightness: "Brightness", contrast: "Contrast",
    saturation: "Saturation", sharpness: "Sharpness", smooth_skin: "Skin smoothing",
    output: "Output", max_kb: "File size limit (KB, empty: none)", layout: "Print sheet", none: "none",
    no_face_ok: "No face? Centre on the person instead of failing", advanced: "Matting", matting: "Method",
    matte_files: "Also show the trimap, alpha and cut-out of the whole photo (slower on large photos)",
    tta: "Flip test-time augmentation", make: "Make ID photo", input: "Input", trimap: "Trimap", alpha: "Alpha",
    cutout: "Cut-out", idphoto: "ID photo", dl_idphoto: "Download ID photo", dl_cutout: "Download cut-out (PNG)",
    dl_sheet: "Download print sheet", timings: "Time per stage", report: "Compliance", rule: "Rule",
    value: "Value", allowed: "Allowed", api: "HTTP API", custom_size: "custom size…", keep: "none: keep the photo's framing",
    working: "Working…", no_photo: "Choose a photo first.", done: "Done in", copies: "copies",
    white: "white", blue: "blue", red: "red", gray: "gray", pass: "pass", fail: "missed",
    queue: "Queue wait", decode: "Decode", foreground: "Foreground", encode: "Encode", total: "Total",
    network: "The server did not answer", quality: "quality",
    dpi_default: "the spec's own", keep_bg: "Keep the photo's own", bg_style: "Style", solid: "solid",
    gradient: "gradient", radial: "radial", level: "Level tilted eyes",
    strict: "Strict: refuse a photo that fails a rule of the standard", face_detector: "Face detector",
    auto: "auto", landmarks: "landmarks", haar: "Haar cascade", check: "Compliance check", na: "n/a",
    passed: "all rules met", failed: "rule(s) missed: usable, but check before handing it in", levelled: "levelled by",
    try_sample: "No photo at hand? Try one:", head_size: "Head size", top_margin: "Room above the head",
    auto_framing: "Automatic framing", slider_hint: "Within the standard's own limits: the compliance report stays green.",
    of_height: "of the height", no_rule: "the standard sets no range", sheet: "Print sheet",
    scale: "Work size (faces found)", retry: "Matted whole again", hd: "Also a high-resolution copy (twice the pixels, when the photo has them)",
    dl_hd: "Download high resolution",
  },
  zh: {
    title: "证件照制作", subtitle: "拖入照片，选择尺寸和底色，下载证件照。照片不会离开本服务器。",
    drop: "把照片拖到这里，或点击选择", size: "尺寸", spec: "规格", width: "宽", height: "高",
    unit: "单位", framing: "构图参照", dpi: "分辨率 DPI", background: "底色", custom_colour: "自定义",
    refused: "这张照片无法制作证件照",
    guide_title: "怎样的照片能通过",
    guide_1: "只有一个人，正对镜头，头部端正，双眼睁开且清晰可见。",
    guide_2: "照片中有完整的头部和肩膀，头发上方留有空间。",
    guide_3: "脸上没有遮挡：不戴墨镜、口罩，没有手、手机或话筒。",
    guide_4: "然后在左侧选择规格和背景并点击按钮。无法制作合格证件照的照片会被拒绝，并说明原因。",
    retouch: "美颜（仅人物；0 为关闭）", brightness: "亮度", contrast: "对比度", saturation: "饱和度",
    sharpness: "锐化", smooth_skin: "磨皮",
    output: "输出", max_kb: "文件大小上限（KB，留空不限）", layout: "排版打印", none: "无",
    no_face_ok: "检测不到人脸时按人像居中，而不报错", advanced: "抠图", matting: "方法",
    matte_files: "同时显示整张照片的三分图、透明度和抠图（大照片较慢）",
    tta: "翻转测试增强", make: "生成证件照", input: "原图", trimap: "三分图", alpha: "透明度",
    cutout: "抠图", idphoto: "证件照", dl_idphoto: "下载证件照", dl_cutout: "下载抠图（PNG）",
    dl_sheet: "下载排版照", timings: "各步骤耗时", report: "合规检查", rule: "规则",
    value: "数值", allowed: "允许范围", api: "HTTP 接口", custom_size: "自定义尺寸…", keep: "无：保持原图构图",
    working: "处理中…", no_photo: "请先选择照片。", done: "完成，用时", copies: "张",
    white: "白底", blue: "蓝底", red: "红底", gray: "灰底", pass: "通过", fail: "未达标",
    queue: "排队", decode: "解码", foreground: "前景", encode: "编码", total: "合计",
    network: "服务器没有响应", quality: "质量",
    dpi_default: "按规格", keep_bg: "保留原背景", bg_style: "样式", solid: "纯色",
    gradient: "渐变", radial: "中心亮", level: "自动摆正倾斜的双眼",
    strict: "严格：不符合规格的任何一条即不生成", face_detector: "人脸检测",
    auto: "自动", landmarks: "关键点", haar: "Haar 级联", check: "合规检查", na: "无法判断",
    passed: "全部符合", failed: "条未达标：可用，提交前请核对", levelled: "已摆正",
    try_sample: "手头没有照片？试试示例：", head_size: "头部大小", top_margin: "头顶留白",
    auto_framing: "自动构图", slider_hint: "只在规格允许的范围内调整：合规检查保持通过。",
    of_height: "占高度", no_rule: "该规格未规定范围", sheet: "排版照",
    scale: "确定处理尺寸（检测人脸）", retry: "整张重新抠图", hd: "同时生成高清版（像素加倍，原图足够大时）",
    dl_hd: "下载高清版",
  },
};

const $ = (id) => document.getElementById(id);

// Whether the browser has a font with Chinese characters: a character no font has draws as the same empty box
// as "证" does when none has it. Without one the page is English only, rather than boxes.
function hasCJK() {
  const c = document.createElement("canvas");
  c.width = 40; c.height = 40;
  const g = c.getContext("2d");
  if (!g) return true;
  const draw = (ch) => { g.clearRect(0, 0, 40, 40); g.font = `32px ${getComputedStyle(document.body).fontFamily}`;
                         g.fillText(ch, 2, 32); return g.getImageData(0, 0, 40, 40).data.join(","); };
  const missing = draw("\u{10FFFD}");
  return draw("证") !== missing && draw("照") !== missing;
}
const CJK = hasCJK();
const stripCJK = (text) => CJK ? text : text.replace(/[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+/g, "").replace(/\s+/g, " ").trim();
let lang = !CJK ? "en" : localStorage.getItem("lang") || ((navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en");
let catalogue = null;
let file = null;
let last = null;  // the last JSON answer, re-rendered on a language switch

function t(key) { return (TEXT[lang] && TEXT[lang][key]) || TEXT.en[key] || key; }

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  $("lang").textContent = lang === "zh" ? "English" : "中文";
  $("lang").hidden = !CJK;
  if (catalogue) { fillCatalogue(); showSliders(); }
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
    spec.append(option(s.name, `${s.name} · ${stripCJK(s.description || "") || s.region} (${s.width_px}×${s.height_px} px)`));
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
  if (current === "keep") $("bg-keep").checked = true;

  fillChoices("matting", catalogue.matting, (name) => name);
  fillChoices("bg-style", catalogue.bg_styles, t);
  fillChoices("face-detector", catalogue.face_detectors, t);
}

// A select of the server's choices, keeping the current one (the server's default at first).
function fillChoices(id, names, label) {
  const select = $(id);
  const current = select.value || catalogue.defaults[select.name];
  select.replaceChildren(...names.map((name) => option(name, label(name))));
  select.value = current;
}

async function loadCatalogue() {
  const r = await fetch("/api/specs");
  catalogue = await r.json();
  if (catalogue.defaults.dpi) $("dpi").value = catalogue.defaults.dpi;
  $("level").checked = !catalogue.defaults.no_level;
  $("strict").checked = !!catalogue.defaults.strict;
  $("no-face-ok").checked = !!catalogue.defaults.no_face_ok;
  $("matte-files").checked = !!catalogue.defaults.matte_files;
  $("hd").checked = !!catalogue.defaults.hd;
  fillCatalogue();
  showSamples();
  showSliders();
}

// Sample photos the server offers: a click makes one the photo, as a chosen file would be.
function showSamples() {
  const box = $("samples");
  box.querySelectorAll("button").forEach((b) => b.remove());
  for (const s of catalogue.samples || []) {
    const b = document.createElement("button");
    b.type = "button"; b.title = s.description; b.dataset.sample = s.name;
    b.innerHTML = "<img alt=''>";
    b.querySelector("img").src = s.url;
    b.addEventListener("click", async () => {
      const r = await fetch(s.url);
      if (!r.ok) { status(`${t("network")}: HTTP ${r.status}`, true); return; }
      setFile(new File([await r.blob()], s.name, { type: "image/jpeg" }));
    });
    box.append(b);
  }
  box.hidden = !(catalogue.samples || []).length;
}

// The spec the framing follows: the chosen one, the one a custom size is framed like, or none.
function framingSpec() {
  const name = $("spec").value === "custom" ? $("framing").value : $("spec").value;
  return catalogue.specs.find((s) => s.name === name) || null;
}

// Head size and top margin: places in the spec's ranges (0 near its least, 100 near its most: a tenth of the range
// inside, as the framing keeps them, idphoto.framing.PREFER_INSET), sent only once moved.
const INSET = 0.1;
const SLIDERS = [["head-size", "head", "head_size"], ["top-margin", "top", "top_margin"]];
const pct = (v) => `${(100 * v).toFixed(1)} %`;
function showSliders() {
  const spec = framingSpec();
  for (const [id, rule] of SLIDERS) {
    const input = $(id), out = $(`${id}-out`);
    const range = spec && spec[rule];
    const twoSided = range && range[0] !== null && range[1] !== null;
    input.disabled = !spec || (rule === "head" && !twoSided);   // a top margin without a rule still has a place
    out.classList.toggle("auto", !input.dataset.moved);
    if (input.disabled) { out.textContent = spec ? t("no_rule") : "–"; continue; }
    const where = twoSided ? `${pct(range[0])}–${pct(range[1])} ${t("of_height")}` : "";
    if (!input.dataset.moved) { out.textContent = `${t("auto")}${where ? ` (${where})` : ""}`; continue; }
    const v = INSET + (1 - 2 * INSET) * input.value / 100;
    out.textContent = twoSided ? `${pct(range[0] + v * (range[1] - range[0]))} (${where})` : `${input.value} %`;
  }
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
  fd.append("bg_style", $("bg-style").value);
  fd.append("no_level", $("level").checked ? "false" : "true");
  fd.append("no_face_ok", $("no-face-ok").checked ? "true" : "false");
  fd.append("matte_files", $("matte-files").checked ? "true" : "false");
  fd.append("hd", $("hd").checked ? "true" : "false");
  fd.append("strict", $("strict").checked ? "true" : "false");
  fd.append("matting", $("matting").value);
  fd.append("tta", $("tta").value);
  fd.append("face_detector", $("face-detector").value);
  for (const [id, , field] of SLIDERS) {
    if ($(id).dataset.moved && !$(id).disabled) fd.append(field, $(id).value);
  }
  for (const [id, field] of [["brightness", "brightness"], ["contrast", "contrast"], ["saturation", "saturation"],
                             ["sharpness", "sharpness"], ["smooth-skin", "smooth_skin"]]) {
    fd.append(field, $(id).value);
  }
  return fd;
}

function dataUrl(data, kind) {
  return data ? `data:${last.media_types[kind]};base64,${data}` : "";
}

function render(res) {
  $("guide").hidden = true;
  $("results").hidden = false;
  $("out-input").src = file ? URL.createObjectURL(file) : $("out-input").src;
  for (const kind of ["trimap", "alpha", "cutout", "idphoto"]) {
    $(`out-${kind}`).src = dataUrl(res.images[kind], kind);
    $(`out-${kind}`).closest("figure").hidden = !res.images[kind];   // the matte images only when asked for
  }
  $("dl-cutout").hidden = !res.images.cutout;
  $("idphoto-info").textContent = `${res.width}×${res.height} px · ${res.dpi} DPI · ${res.kb} KB · ${t("quality")} ${res.quality}`;
  $("dl-idphoto").href = dataUrl(res.images.idphoto, "idphoto");
  $("dl-cutout").href = dataUrl(res.images.cutout, "cutout");
  const hd = $("dl-hd");
  hd.hidden = !res.images.idphoto_hd;
  hd.href = dataUrl(res.images.idphoto_hd, "idphoto_hd");
  const sheet = $("dl-sheet");
  sheet.hidden = !res.images.sheet;
  if (res.images.sheet) {
    sheet.href = dataUrl(res.images.sheet, "sheet");
    sheet.textContent = `${t("dl_sheet")} (${res.copies} ${t("copies")})`;
  }
  $("sheet-figure").hidden = !res.images.sheet;    // the sheet as it will print, before it is downloaded
  $("out-sheet").src = dataUrl(res.images.sheet, "sheet");
  $("sheet-info").textContent = res.images.sheet ? `${res.copies} ${t("copies")}` : "";
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

  // The compliance report, measured on the final JPEG (none when the photo keeps its own framing).
  const report = $("report");
  report.hidden = !res.report;
  if (res.report) {
    const failed = res.report.checks.filter((c) => c.passed === false).length;
    const verdict = $("report-verdict");
    verdict.className = `verdict ${failed ? "fail" : "pass"}`;
    verdict.textContent = `· ${res.report.spec}: ${failed ? `${failed} ${t("failed")}` : t("passed")}` +
      (res.report.levelled_degrees ? ` · ${t("levelled")} ${res.report.levelled_degrees}°` : "");
    const fmt = (v) => v === null || v === undefined ? "–" : typeof v === "number" ? String(+v.toFixed(3)) : String(v);
    report.tBodies[0].replaceChildren(...res.report.checks.map((c) => {
      const tr = document.createElement("tr");
      tr.className = c.passed === true ? "pass" : c.passed === false ? "fail" : "na";
      tr.innerHTML = "<td></td><td class=num></td><td></td><td></td>";
      tr.children[0].textContent = c.rule;
      tr.children[1].textContent = fmt(c.value) + (c.unit && c.value !== null ? ` ${c.unit}` : "");
      tr.children[2].textContent = c.allowed || "";
      tr.children[3].textContent = c.passed === true ? `✓ ${t("pass")}` : c.passed === false ? `✗ ${t("fail")}` : t("na");
      if (c.note) tr.title = c.note;
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
      const why = body.error || `HTTP ${r.status}`;
      status(why, true);
      if (r.status === 422) {  // the photo can't make an ID photo: say why where the photo would have been
        $("results").hidden = true;
        $("guide").hidden = false;
        const refusal = $("refusal");
        refusal.textContent = `${t("refused")}: ${why}`;
        refusal.hidden = false;
        refusal.scrollIntoView({ block: "nearest" });
      }
      return;
    }
    $("refusal").hidden = true;
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
  $("spec").addEventListener("change", () => { $("custom").hidden = $("spec").value !== "custom"; showSliders(); });
  $("framing").addEventListener("change", showSliders);
  for (const [id] of SLIDERS) $(id).addEventListener("input", () => { $(id).dataset.moved = "1"; showSliders(); });
  $("framing-auto").addEventListener("click", () => {
    for (const [id] of SLIDERS) { delete $(id).dataset.moved; $(id).value = 50; }
    showSliders();
  });
  $("bg-colour").addEventListener("input", () => { $("bg-custom").checked = true; });
  $("form").addEventListener("submit", submit);
  applyLanguage();
  loadCatalogue().catch((e) => status(`${t("network")}: ${e.message}`, true));
}

setUp();
