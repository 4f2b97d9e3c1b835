// The explorer page's script: decodes the data embedded in the page, draws the points on a
// canvas and answers the panels. Values from the data are only ever set as text
// (textContent, value), never as markup.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("explorer-data").textContent);
  const n = D.n, k = D.k;

  // -- data ---------------------------------------------------------------------------------

  const TYPED = { f4: Float32Array, f8: Float64Array, i4: Int32Array, u2: Uint16Array };

  function bytesOf(b64) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(b64);
    const text = atob(b64);
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }

  function decode(b64, type) {
    const bytes = bytesOf(b64), Type = TYPED[type];
    return new Type(bytes.buffer, bytes.byteOffset, bytes.byteLength / Type.BYTES_PER_ELEMENT);
  }

  const X = decode(D.x, "f4"), Y = decode(D.y, "f4");
  const NEIGHBORS = decode(D.neighbors, "i4"), DISTANCES = decode(D.distances, "f4");
  const ids = D.ids || Array.from({ length: n }, (_, i) => String(i));
  const columns = D.columns.map((c) => Object.assign({}, c, { data: decode(c.data, c.type) }));
  const thumbnails = D.thumbnails || {};

  function thumbnailOf(i) {
    const uri = Object.prototype.hasOwnProperty.call(thumbnails, String(i)) ? thumbnails[String(i)] : null;
    return typeof uri === "string" && uri.startsWith("data:image/") ? uri : null;
  }

  function formatNumber(v, integer) {
    if (Number.isNaN(v)) return null;
    if (integer || (Number.isInteger(v) && Math.abs(v) < 1e21)) return String(v);
    return String(Number(v.toPrecision(6)));
  }

  // A point's value in a column, as text; null when it has none.
  function valueText(column, i) {
    if (column.kind === "category") return column.values[column.data[i]];
    return formatNumber(column.data[i], column.integer);
  }

  function neighborsOf(i) {
    const found = [];
    for (let j = 0; j < k; j++) {
      const other = NEIGHBORS[i * k + j];
      if (other >= 0 && other < n) found.push({ index: other, distance: DISTANCES[i * k + j] });
    }
    return found;
  }

  // -- colours ------------------------------------------------------------------------------

  // Distinct hues, no greys: grey means "other" or "no value".
  const PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5", "#dbdb8d", "#637939",
  ];
  const OTHER = "#9aa1aa", NO_VALUE = "#d5d9de", PLAIN = "#3468b0";
  const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
  const SCALE_STEPS = 256;

  function rgbOf(hex) {
    const v = parseInt(hex.slice(1), 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }

  function hexOf(rgb) {
    return "#" + rgb.map((c) => Math.round(c).toString(16).padStart(2, "0")).join("");
  }

  const SCALE = (function () {
    const stops = VIRIDIS.map(rgbOf), out = [];
    for (let s = 0; s < SCALE_STEPS; s++) {
      const t = (s / (SCALE_STEPS - 1)) * (stops.length - 1), a = Math.min(Math.floor(t), stops.length - 2), f = t - a;
      out.push(hexOf(stops[a].map((c, j) => c + (stops[a + 1][j] - c) * f)));
    }
    return out;
  })();

  // The canvas' pixels are written as 32-bit words: bytes R, G, B, A in memory order.
  function pixelOf(rgb) {
    return ((255 << 24) | (rgb[2] << 16) | (rgb[1] << 8) | rgb[0]) >>> 0;
  }

  const BACKGROUND = pixelOf([255, 255, 255]);
  let colorColumn = null;
  let colors = [PLAIN];                     // the colours of the current scheme, as #rrggbb
  const colorIndex = new Uint16Array(n);    // each point's index into colors
  let fullPixels = new Uint32Array(1), dimPixels = new Uint32Array(1);

  function setColorBy(name) {
    colorColumn = columns.find((c) => c.name === name) || null;
    const column = colorColumn;
    if (!column) {
      colors = [PLAIN];
      colorIndex.fill(0);
    } else if (column.kind === "category") {
      const shown = Math.min(PALETTE.length, column.values.length);
      const other = shown, none = shown + 1, nullCode = column.values.indexOf(null);
      colors = PALETTE.slice(0, shown).concat([OTHER, NO_VALUE]);
      for (let i = 0; i < n; i++) {
        const code = column.data[i];
        colorIndex[i] = code === nullCode ? none : code < shown ? code : other;
      }
    } else {
      const none = SCALE_STEPS, low = column.low, span = column.high - column.low;
      colors = SCALE.concat([NO_VALUE]);
      for (let i = 0; i < n; i++) {
        const v = column.data[i];
        if (Number.isNaN(v)) { colorIndex[i] = none; continue; }
        const t = span > 0 ? (v - low) / span : 0.5;
        colorIndex[i] = Math.round(Math.min(1, Math.max(0, t)) * (SCALE_STEPS - 1));
      }
    }
    fullPixels = new Uint32Array(colors.map((c) => pixelOf(rgbOf(c))));
    // Points outside a selection fade towards the background, so the selection stands out.
    dimPixels = new Uint32Array(colors.map((c) => pixelOf(rgbOf(c).map((v) => v + (255 - v) * 0.7))));
    const select = document.getElementById("color-by");
    select.selectedIndex = column ? columns.indexOf(column) + 1 : 0;
    renderLegend();
    renderFocus();
    requestDraw();
  }

  // -- view ---------------------------------------------------------------------------------

  const canvas = document.getElementById("map");
  const ctx = canvas.getContext("2d");
  let width = 0, height = 0, dpr = 1;      // CSS pixels, and device pixels per CSS pixel
  let scale = 1, centerX = 0, centerY = 0; // CSS pixels per data unit; the data point at the centre
  let image = null, pixels = null;
  let fitted = false;

  const bounds = (function () {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = X[i], y = Y[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      if (x < x0) x0 = x; if (x > x1) x1 = x;
      if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
    return x0 <= x1 ? { x0, y0, x1, y1 } : { x0: -1, y0: -1, x1: 1, y1: 1 };
  })();

  function toScreen(x, y) {
    return { x: (x - centerX) * scale + width / 2, y: height / 2 - (y - centerY) * scale };
  }

  function toData(sx, sy) {
    return { x: (sx - width / 2) / scale + centerX, y: centerY - (sy - height / 2) / scale };
  }

  // Shows every point, clear of the toolbar above and the hint below.
  function fit() {
    const side = 24, top = 56, bottom = 36;
    const spanX = Math.max(bounds.x1 - bounds.x0, 1e-9), spanY = Math.max(bounds.y1 - bounds.y0, 1e-9);
    scale = Math.max(1e-9, Math.min((width - 2 * side) / spanX, (height - top - bottom) / spanY));
    if (bounds.x1 - bounds.x0 < 1e-9 && bounds.y1 - bounds.y0 < 1e-9) scale = 1;
    centerX = (bounds.x0 + bounds.x1) / 2;
    centerY = (bounds.y0 + bounds.y1) / 2 + (top - bottom) / 2 / scale;
    requestDraw();
  }

  function resize() {
    const rect = canvas.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    if (rect.width === width && rect.height === height && ratio === dpr && image) return;
    width = rect.width; height = rect.height; dpr = ratio;
    canvas.width = Math.max(1, Math.round(width * dpr));
    canvas.height = Math.max(1, Math.round(height * dpr));
    image = ctx.createImageData(canvas.width, canvas.height);
    pixels = new Uint32Array(image.data.buffer);
    if (!fitted && width > 0 && height > 0) { fitted = true; fit(); }
    draw();
  }

  // -- spatial index: a uniform grid over the map, so picking the point under the cursor
  // looks at a few cells instead of every point.

  const GRID = Math.max(1, Math.min(1024, Math.ceil(Math.sqrt(n / 2))));
  const cellWidth = (bounds.x1 - bounds.x0) / GRID || 1, cellHeight = (bounds.y1 - bounds.y0) / GRID || 1;
  const cellStart = new Int32Array(GRID * GRID + 1);
  const cellPoints = (function () {
    const cellOf = new Int32Array(n).fill(-1);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(X[i]) || !Number.isFinite(Y[i])) continue;
      const c = gridColumn(X[i]) + GRID * gridRow(Y[i]);
      cellOf[i] = c;
      cellStart[c + 1]++;
    }
    for (let c = 0; c < GRID * GRID; c++) cellStart[c + 1] += cellStart[c];
    const fill = cellStart.slice(0, GRID * GRID), points = new Int32Array(cellStart[GRID * GRID]);
    for (let i = 0; i < n; i++) if (cellOf[i] >= 0) points[fill[cellOf[i]]++] = i;
    return points;
  })();

  function gridColumn(x) { return Math.min(GRID - 1, Math.max(0, Math.floor((x - bounds.x0) / cellWidth))); }
  function gridRow(y) { return Math.min(GRID - 1, Math.max(0, Math.floor((y - bounds.y0) / cellHeight))); }

  // The point nearest to the screen position (sx, sy), within `radius` CSS pixels; -1 if none.
  function pick(sx, sy, radius) {
    if (n === 0) return -1;
    const p = toData(sx, sy), r = radius / scale;
    const c0 = gridColumn(p.x - r), c1 = gridColumn(p.x + r), r0 = gridRow(p.y - r), r1 = gridRow(p.y + r);
    let best = -1, bestDistance = r * r;
    for (let row = r0; row <= r1; row++) {
      for (let col = c0; col <= c1; col++) {
        const cell = row * GRID + col;
        for (let s = cellStart[cell]; s < cellStart[cell + 1]; s++) {
          const i = cellPoints[s], dx = X[i] - p.x, dy = Y[i] - p.y, d = dx * dx + dy * dy;
          if (d <= bestDistance) { bestDistance = d; best = i; }
        }
      }
    }
    return best;
  }

  // -- state --------------------------------------------------------------------------------

  let focus = -1;                           // the clicked point, whose neighbours are listed
  const selected = new Uint8Array(n);       // the selection (a click, a box or a lasso)
  let selection = [];                       // its points, in index order
  const marked = new Uint8Array(n);         // the focus' neighbours, drawn on top
  let hovered = -1;
  let drag = null;                          // the pan, box or lasso under way

  // -- drawing ------------------------------------------------------------------------------

  let pending = false;
  // Squares of 3 CSS pixels, a little smaller for a crowd of points.
  const POINT_SIZE = n > 20000 ? 2.5 : 3;

  function requestDraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(draw);
  }

  function drawPoints(pass, emphasis, palette) {
    const cw = canvas.width, ch = canvas.height;
    const size = Math.max(2, Math.round(POINT_SIZE * dpr)), half = size >> 1;
    const a = scale * dpr, bx = (width / 2 - centerX * scale) * dpr, by = (height / 2 + centerY * scale) * dpr;
    let drawn = 0;
    for (let i = 0; i < n; i++) {
      if (emphasis && (selected[i] | marked[i]) !== pass) continue;
      const fx = X[i] * a + bx, fy = by - Y[i] * a;
      // NaN fails both comparisons: a point without coordinates is not drawn.
      if (!(fx > -size && fx < cw + size && fy > -size && fy < ch + size)) continue;
      const x0 = Math.max(0, Math.floor(fx) - half), x1 = Math.min(cw, Math.floor(fx) - half + size);
      const y0 = Math.max(0, Math.floor(fy) - half), y1 = Math.min(ch, Math.floor(fy) - half + size);
      if (x0 >= x1 || y0 >= y1) continue;
      const color = palette[colorIndex[i]];
      for (let y = y0; y < y1; y++) {
        const row = y * cw;
        for (let x = x0; x < x1; x++) pixels[row + x] = color;
      }
      drawn++;
    }
    return drawn;
  }

  function draw() {
    pending = false;
    if (!image) return;
    pixels.fill(BACKGROUND);
    const emphasis = selection.length > 0 || focus >= 0;
    let drawn = drawPoints(0, emphasis, emphasis ? dimPixels : fullPixels);
    if (emphasis) drawn += drawPoints(1, true, fullPixels);
    ctx.putImageData(image, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawOverlay();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    explorer.drawnPoints = drawn;
    explorer.ready = true;
  }

  function circle(i, radius, fill, stroke, lineWidth) {
    const p = toScreen(X[i], Y[i]);
    ctx.beginPath();
    ctx.arc(p.x, p.y, radius, 0, 2 * Math.PI);
    if (fill) { ctx.fillStyle = fill; ctx.fill(); }
    if (stroke) { ctx.strokeStyle = stroke; ctx.lineWidth = lineWidth; ctx.stroke(); }
  }

  function drawOverlay() {
    // A few selected points get rings, so they can be found on the map.
    if (selection.length <= 30) {
      for (const i of selection) if (i !== focus) circle(i, 4.5, null, "#1d2330", 1.25);
    }
    if (focus >= 0) {
      const from = toScreen(X[focus], Y[focus]), near = neighborsOf(focus);
      ctx.strokeStyle = "rgba(29, 35, 48, 0.35)";
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (const { index } of near) {
        const to = toScreen(X[index], Y[index]);
        ctx.moveTo(from.x, from.y);
        ctx.lineTo(to.x, to.y);
      }
      ctx.stroke();
      for (const { index } of near) circle(index, 4.5, colors[colorIndex[index]], "#1d2330", 1.5);
      circle(focus, 8, "#ffffff", null, 0);
      circle(focus, 6.5, colors[colorIndex[focus]], "#1d2330", 2);
    }
    if (hovered >= 0) circle(hovered, 7, null, "#1a66d2", 2);
    if (drag && drag.moved && drag.mode === "box") {
      const x = Math.min(drag.x0, drag.x), y = Math.min(drag.y0, drag.y);
      ctx.fillStyle = "rgba(26, 102, 210, 0.08)";
      ctx.fillRect(x, y, Math.abs(drag.x - drag.x0), Math.abs(drag.y - drag.y0));
      ctx.setLineDash([4, 3]);
      ctx.strokeStyle = "#1a66d2";
      ctx.lineWidth = 1;
      ctx.strokeRect(x + 0.5, y + 0.5, Math.abs(drag.x - drag.x0), Math.abs(drag.y - drag.y0));
      ctx.setLineDash([]);
    }
    if (drag && drag.moved && drag.mode === "lasso" && drag.path.length > 1) {
      ctx.beginPath();
      ctx.moveTo(drag.path[0].x, drag.path[0].y);
      for (const p of drag.path) ctx.lineTo(p.x, p.y);
      ctx.closePath();
      ctx.fillStyle = "rgba(26, 102, 210, 0.08)";
      ctx.fill();
      ctx.setLineDash([4, 3]);
      ctx.strokeStyle = "#1a66d2";
      ctx.lineWidth = 1;
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }

  // -- selection ----------------------------------------------------------------------------

  function setSelection(points) {
    selected.fill(0);
    for (const i of points) selected[i] = 1;
    selection = [];
    for (let i = 0; i < n; i++) if (selected[i]) selection.push(i);
    renderSelection();
    requestDraw();
  }

  function setFocus(i) {
    focus = i;
    marked.fill(0);
    if (i >= 0) for (const { index } of neighborsOf(i)) marked[index] = 1;
    renderFocus();
  }

  function select(i) {
    i = Number(i);
    if (!Number.isInteger(i) || i < 0 || i >= n) return;
    setFocus(i);
    setSelection([i]);
  }

  // Brings point i into view when it is off the canvas.
  function reveal(i) {
    const p = toScreen(X[i], Y[i]);
    if (p.x < 0 || p.y < 0 || p.x > width || p.y > height) {
      centerX = X[i];
      centerY = Y[i];
      requestDraw();
    }
  }

  function selectRect(x0, y0, x1, y1) {
    const left = Math.min(x0, x1), right = Math.max(x0, x1), bottom = Math.min(y0, y1), top = Math.max(y0, y1);
    const found = [];
    for (let i = 0; i < n; i++) {
      if (X[i] >= left && X[i] <= right && Y[i] >= bottom && Y[i] <= top) found.push(i);
    }
    setFocus(-1);
    setSelection(found);
  }

  // Selects the points inside a polygon given in data coordinates (even-odd rule).
  function selectPolygon(polygon) {
    const found = [];
    if (polygon.length >= 3) {
      let left = Infinity, right = -Infinity, bottom = Infinity, top = -Infinity;
      for (const p of polygon) {
        left = Math.min(left, p.x); right = Math.max(right, p.x);
        bottom = Math.min(bottom, p.y); top = Math.max(top, p.y);
      }
      for (let i = 0; i < n; i++) {
        const x = X[i], y = Y[i];
        if (!(x >= left && x <= right && y >= bottom && y <= top)) continue;
        let inside = false;
        for (let a = 0, b = polygon.length - 1; a < polygon.length; b = a++) {
          const pa = polygon[a], pb = polygon[b];
          if ((pa.y > y) !== (pb.y > y) && x < ((pb.x - pa.x) * (y - pa.y)) / (pb.y - pa.y) + pa.x) inside = !inside;
        }
        if (inside) found.push(i);
      }
    }
    setFocus(-1);
    setSelection(found);
  }

  function clear() {
    setFocus(-1);
    setSelection([]);
  }

  // -- panels -------------------------------------------------------------------------------

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function valueNode(tag, text) {
    return text === null ? element(tag, "null", "null") : element(tag, "", text);
  }

  function renderInfo() {
    document.getElementById("count").textContent = n.toLocaleString("en-US") + (n === 1 ? " point" : " points");
    const list = document.getElementById("info");
    for (const [name, value] of D.info) {
      list.append(element("dt", "", name), element("dd", "", value));
    }
    if (!D.info.length) document.getElementById("info-section").hidden = true;
  }

  function renderColorOptions() {
    const select = document.getElementById("color-by");
    select.append(new Option("(none)", ""));
    for (const column of columns) select.append(new Option(column.name, column.name));
    select.addEventListener("change", () => {
      const index = select.selectedIndex;
      setColorBy(index > 0 ? columns[index - 1].name : null);
    });
  }

  function legendEntry(color, name, count, isNull) {
    const entry = element("div", "entry");
    const swatch = element("span", "swatch");
    swatch.style.background = color;
    const label = element("span", isNull ? "name null" : "name", name);
    label.title = name;
    entry.append(swatch, label, element("span", "n", count.toLocaleString("en-US")));
    return entry;
  }

  function renderLegend() {
    const legend = document.getElementById("legend");
    legend.replaceChildren();
    const column = colorColumn;
    if (!column) return;
    if (column.kind === "category") {
      const counts = new Array(column.values.length).fill(0);
      for (let i = 0; i < n; i++) counts[column.data[i]]++;
      const shown = Math.min(PALETTE.length, column.values.length);
      let otherValues = 0, otherCount = 0;
      column.values.forEach((value, code) => {
        if (value === null) legend.append(legendEntry(NO_VALUE, "null", counts[code], true));
        else if (code < shown) legend.append(legendEntry(PALETTE[code], value, counts[code], false));
        else { otherValues++; otherCount += counts[code]; }
      });
      if (otherValues) {
        const entry = legendEntry(OTHER, `other (${otherValues.toLocaleString("en-US")} values)`, otherCount, false);
        // Null, when present, is listed last: "other" goes just before it.
        const last = legend.lastElementChild;
        if (column.values.includes(null) && last) legend.insertBefore(entry, last); else legend.append(entry);
      }
    } else {
      const bar = element("div", "bar");
      bar.style.background = `linear-gradient(to right, ${VIRIDIS.join(", ")})`;
      const ends = element("div", "ends");
      ends.append(element("span", "", formatNumber(column.low, false) ?? ""), element("span", "", formatNumber(column.high, false) ?? ""));
      legend.append(bar, ends);
      let missing = 0;
      for (let i = 0; i < n; i++) if (Number.isNaN(column.data[i])) missing++;
      if (missing) legend.append(legendEntry(NO_VALUE, "null", missing, true));
    }
  }

  function thumbnailImage(i, className) {
    const uri = thumbnailOf(i);
    if (!uri) return null;
    const img = element("img", className);
    img.alt = "";
    img.src = uri;
    return img;
  }

  function renderFocus() {
    const list = document.getElementById("neighbors"), label = document.getElementById("focus-id");
    const thumb = document.getElementById("focus-thumb");
    list.replaceChildren();
    document.getElementById("focus-empty").hidden = focus >= 0;
    label.textContent = focus >= 0 ? ids[focus] : "";
    const uri = focus >= 0 ? thumbnailOf(focus) : null;
    thumb.hidden = !uri;
    if (uri) thumb.src = uri; else thumb.removeAttribute("src");
    if (focus < 0) return;
    for (const { index, distance } of neighborsOf(focus)) {
      const item = element("li");
      item.tabIndex = 0;
      const row = element("span", "nrow");
      const img = thumbnailImage(index, "");
      if (img) row.append(img);
      row.append(element("span", "nid", ids[index]),
                 element("span", "ndist", Number.isFinite(distance) ? distance.toPrecision(4) : "–"));
      item.append(row);
      if (colorColumn) {
        const value = element("span", "nval");
        const swatch = element("span", "swatch");
        swatch.style.background = colors[colorIndex[index]];
        value.append(swatch, " " + colorColumn.name + ": ", valueNode("span", valueText(colorColumn, index)));
        item.append(value);
      }
      const choose = () => { select(index); reveal(index); };
      item.addEventListener("click", choose);
      item.addEventListener("keydown", (event) => { if (event.key === "Enter") choose(); });
      list.append(item);
    }
  }

  function renderSelection() {
    const count = selection.length;
    document.getElementById("selection-count").textContent =
      count ? `${count.toLocaleString("en-US")} point${count === 1 ? "" : "s"} selected.` : "Nothing selected.";
    document.getElementById("selection-ids").value = selection.map((i) => ids[i]).join("\n");
    document.getElementById("copy-ids").disabled = count === 0;
    document.getElementById("copy-status").textContent = "";
  }

  async function copyIds() {
    const area = document.getElementById("selection-ids"), status = document.getElementById("copy-status");
    const count = selection.length;
    try {
      await navigator.clipboard.writeText(area.value);
      status.textContent = `Copied ${count.toLocaleString("en-US")} ids.`;
    } catch (error) {
      // No clipboard API (or no permission, as for some pages opened from a file): the older way.
      area.focus();
      area.select();
      let copied = false;
      try { copied = document.execCommand("copy"); } catch (ignored) { copied = false; }
      status.textContent = copied ? `Copied ${count.toLocaleString("en-US")} ids.` : "Selected: press Ctrl+C (⌘C) to copy.";
    }
  }

  // -- tooltip ------------------------------------------------------------------------------

  const tooltip = document.getElementById("tooltip");
  let tooltipFor = -1;

  function showTooltip(i, clientX, clientY) {
    if (i !== tooltipFor) {
      tooltipFor = i;
      tooltip.replaceChildren();
      const img = thumbnailImage(i, "");
      if (img) tooltip.append(img);
      tooltip.append(element("div", "tid", ids[i]));
      const list = element("dl");
      for (const column of columns) list.append(element("dt", "", column.name), valueNode("dd", valueText(column, i)));
      tooltip.append(list);
      tooltip.style.display = "block";
    }
    const gap = 14, box = tooltip.getBoundingClientRect();
    let left = clientX + gap, top = clientY + gap;
    if (left + box.width > window.innerWidth - 4) left = clientX - gap - box.width;
    if (top + box.height > window.innerHeight - 4) top = clientY - gap - box.height;
    tooltip.style.left = Math.max(4, left) + "px";
    tooltip.style.top = Math.max(4, top) + "px";
  }

  function hideTooltip() {
    tooltipFor = -1;
    tooltip.style.display = "none";
  }

  // -- input --------------------------------------------------------------------------------

  let toolMode = "pan";
  const PICK_RADIUS = 8;

  function setToolMode(mode) {
    toolMode = mode;
    for (const name of ["pan", "box", "lasso"]) {
      document.getElementById("mode-" + name).setAttribute("aria-pressed", String(name === mode));
    }
    canvas.classList.toggle("select-mode", mode !== "pan");
  }

  function canvasPoint(event) {
    const rect = canvas.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  }

  function setHovered(i) {
    if (i === hovered) return;
    hovered = i;
    requestDraw();
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    const p = canvasPoint(event);
    const mode = event.shiftKey ? "box" : event.altKey ? "lasso" : toolMode;
    drag = { mode, x0: p.x, y0: p.y, x: p.x, y: p.y, moved: false, centerX, centerY, path: [p] };
    canvas.setPointerCapture(event.pointerId);
    event.preventDefault();
  });

  canvas.addEventListener("pointermove", (event) => {
    const p = canvasPoint(event);
    if (!drag) {
      const i = pick(p.x, p.y, PICK_RADIUS);
      setHovered(i);
      if (i >= 0) showTooltip(i, event.clientX, event.clientY); else hideTooltip();
      return;
    }
    drag.x = p.x;
    drag.y = p.y;
    if (!drag.moved && Math.hypot(p.x - drag.x0, p.y - drag.y0) > 3) {
      drag.moved = true;
      hideTooltip();
      setHovered(-1);
      if (drag.mode === "pan") canvas.classList.add("dragging");
    }
    if (!drag.moved) return;
    if (drag.mode === "pan") {
      centerX = drag.centerX - (p.x - drag.x0) / scale;
      centerY = drag.centerY + (p.y - drag.y0) / scale;
    } else if (drag.mode === "lasso") {
      const last = drag.path[drag.path.length - 1];
      if (Math.hypot(p.x - last.x, p.y - last.y) >= 2) drag.path.push(p);
    }
    requestDraw();
  });

  canvas.addEventListener("pointerup", (event) => {
    if (!drag) return;
    const done = drag;
    drag = null;
    canvas.classList.remove("dragging");
    if (!done.moved) {
      const i = pick(done.x0, done.y0, PICK_RADIUS);
      if (i >= 0) select(i); else clear();
    } else if (done.mode === "box") {
      const a = toData(done.x0, done.y0), b = toData(done.x, done.y);
      selectRect(a.x, a.y, b.x, b.y);
    } else if (done.mode === "lasso") {
      selectPolygon(done.path.map((p) => toData(p.x, p.y)));
    }
    requestDraw();
  });

  canvas.addEventListener("pointercancel", () => {
    drag = null;
    canvas.classList.remove("dragging");
    requestDraw();
  });

  canvas.addEventListener("pointerleave", () => {
    if (drag) return;
    hideTooltip();
    setHovered(-1);
  });

  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    const p = canvasPoint(event), anchor = toData(p.x, p.y);
    const lines = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? height : 1;
    scale *= Math.exp(-event.deltaY * lines * 0.0015);
    // The data point under the cursor stays under the cursor.
    centerX = anchor.x - (p.x - width / 2) / scale;
    centerY = anchor.y + (p.y - height / 2) / scale;
    hideTooltip();
    setHovered(-1);
    requestDraw();
  }, { passive: false });

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (drag) { drag = null; canvas.classList.remove("dragging"); }
    clear();
    requestDraw();
  });

  let idIndex = null;

  function find(query) {
    const status = document.getElementById("find-status");
    query = query.trim();
    if (!query) { status.textContent = ""; return; }
    if (!idIndex) {
      idIndex = new Map();
      for (let i = n - 1; i >= 0; i--) idIndex.set(ids[i], i);
    }
    let i = idIndex.has(query) ? idIndex.get(query) : -1;
    if (i < 0) {
      // No exact match: the first id that contains the text, ignoring case.
      const lower = query.toLowerCase();
      i = ids.findIndex((id) => id.toLowerCase().includes(lower));
      status.textContent = i >= 0 ? `No id "${query}": showing ${ids[i]}` : `No point with id "${query}".`;
    } else {
      status.textContent = "";
    }
    if (i >= 0) { select(i); reveal(i); }
  }

  const findBox = document.getElementById("find");
  findBox.addEventListener("keydown", (event) => { if (event.key === "Enter") find(findBox.value); });
  findBox.addEventListener("change", () => find(findBox.value));

  document.getElementById("mode-pan").addEventListener("click", () => setToolMode("pan"));
  document.getElementById("mode-box").addEventListener("click", () => setToolMode("box"));
  document.getElementById("mode-lasso").addEventListener("click", () => setToolMode("lasso"));
  document.getElementById("fit").addEventListener("click", fit);
  document.getElementById("copy-ids").addEventListener("click", copyIds);

  // -- the API for tests and the console ----------------------------------------------------

  const explorer = {
    ready: false,
    drawnPoints: 0,
    n,
    colorOf: (i) => colors[colorIndex[i]],
    select: (i) => { select(i); },
    selectRect: (x0, y0, x1, y1) => { selectRect(x0, y0, x1, y1); },
    selectPolygon: (points) => { selectPolygon(points.map(([x, y]) => ({ x, y }))); },
    selectedIds: () => selection.map((i) => ids[i]),
    neighborsOf: (i) => neighborsOf(i).map(({ index }) => ids[index]),
    screenPosition: (i) => toScreen(X[i], Y[i]),
    setColorBy: (name) => { setColorBy(name); },
    clear,
    fit,
    draw,
  };
  window.explorer = explorer;

  renderInfo();
  renderColorOptions();
  renderSelection();
  setColorBy(D.colorBy);
  window.addEventListener("resize", resize);
  new ResizeObserver(resize).observe(canvas);
  resize();
})();
