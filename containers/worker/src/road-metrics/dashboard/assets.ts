/**
 * The dashboard page's inline CSS and JS. Plain browser JavaScript (no framework, no network): every
 * value from the results goes into the DOM as textContent or an attribute, never as HTML.
 */
export const DASHBOARD_STYLE = `
body { font: 14px system-ui, sans-serif; margin: 0; color: #1d232a; background: #f4f6f8; }
header { padding: 12px 20px; background: #20303f; color: #fff; } header h1 { margin: 0; font-size: 20px; }
header p { margin: 4px 0 0; opacity: .85; }
main { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; padding: 14px; }
.panel { background: #fff; border-radius: 6px; padding: 10px 14px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.panel.wide { grid-column: 1 / span 2; } h2 { font-size: 15px; margin: 4px 0 8px; }
table { border-collapse: collapse; width: 100%; } th, td { padding: 3px 8px; text-align: right; border-bottom: 1px solid #e3e7eb; }
th:first-child, td:first-child { text-align: left; } th[data-key] { cursor: pointer; user-select: none; }
th.sorted-asc::after { content: " \\25B2"; } th.sorted-desc::after { content: " \\25BC"; }
#tooltip { min-height: 1.4em; margin-top: 6px; font-variant-numeric: tabular-nums; }
#legend { display: flex; align-items: center; gap: 6px; font-size: 12px; }
.cell:hover { stroke: #000; stroke-width: 1; } .status-succeeded { color: #18794e; } .status-failed { color: #c62828; }
`;

export const DASHBOARD_SCRIPT = `
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var SVG = 'http://www.w3.org/2000/svg';
  function el(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (parent) parent.appendChild(e);
    return e;
  }
  function colour(t) {
    // light yellow -> orange -> dark red
    var stops = [[255, 245, 190], [253, 141, 60], [128, 0, 38]];
    var x = Math.max(0, Math.min(1, t)) * 2, i = Math.min(1, Math.floor(x)), f = x - i;
    var a = stops[i], b = stops[i + 1];
    return 'rgb(' + [0, 1, 2].map(function (j) { return Math.round(a[j] + (b[j] - a[j]) * f); }).join(',') + ')';
  }
  var day = data.day, result = day.result;
  document.getElementById('summary').textContent =
    result.records + ' defects, ' + result.rejected + ' rejected rows, ' + Object.keys(result.segments).length + ' segments; generated ' + data.generatedAt;

  // Heatmap: one rect per cell of the result's lat/lon grid.
  var cells = Object.keys(result.heatmap.cells).map(function (name) {
    var p = name.split(':');
    return { lat: Number(p[0]), lon: Number(p[1]), count: result.heatmap.cells[name] };
  });
  var deg = result.heatmap.cellDeg, W = 520, H = 360;
  var box = document.getElementById('heatmap'), tip = document.getElementById('tooltip');
  if (cells.length > 0) {
    var minLat = Infinity, maxLat = -Infinity, minLon = Infinity, maxLon = -Infinity, max = 0;
    cells.forEach(function (c) {
      minLat = Math.min(minLat, c.lat); maxLat = Math.max(maxLat, c.lat);
      minLon = Math.min(minLon, c.lon); maxLon = Math.max(maxLon, c.lon); max = Math.max(max, c.count);
    });
    var cols = maxLon - minLon + 1, rows = maxLat - minLat + 1, size = Math.min(W / cols, H / rows);
    // A wide extent (defects across a country) gives cells under a pixel: the whole grid still fits the
    // panel, and a cell is drawn at least 1.5 px around its place so that a lone one stays visible.
    var drawn = Math.max(size, 1.5), shift = (drawn - size) / 2;
    var svg = el('svg', { width: cols * size, height: rows * size, viewBox: '0 0 ' + cols * size + ' ' + rows * size, id: 'heatmap-svg' }, box);
    cells.forEach(function (c) {
      var r = el('rect', {
        class: 'cell', x: (c.lon - minLon) * size - shift, y: (maxLat - c.lat) * size - shift, width: drawn, height: drawn,
        fill: colour(max > 0 ? c.count / max : 0), 'data-count': c.count
      }, svg);
      var label = 'lat ' + (c.lat * deg).toFixed(2) + '..' + ((c.lat + 1) * deg).toFixed(2) + ', lon ' +
        (c.lon * deg).toFixed(2) + '..' + ((c.lon + 1) * deg).toFixed(2) + ': ' + c.count + ' defects';
      r.addEventListener('mouseenter', function () { tip.textContent = label; });
    });
    var legend = document.getElementById('legend');
    var lo = document.createElement('span'); lo.textContent = '1'; legend.appendChild(lo);
    var bar = el('svg', { width: 160, height: 12 }, legend);
    for (var i = 0; i < 16; i++) el('rect', { x: i * 10, y: 0, width: 10, height: 12, fill: colour(i / 15) }, bar);
    var hi = document.createElement('span'); hi.textContent = String(max) + ' defects per cell'; legend.appendChild(hi);
  } else {
    box.textContent = 'no defects on this day';
  }

  // Daily trend: defects per day, one point per day of history.
  var hist = data.history, tw = 520, th = 220, pad = 36;
  var tsvg = el('svg', { width: tw, height: th, id: 'trend-svg' }, document.getElementById('trend'));
  var tmax = Math.max.apply(null, hist.map(function (h) { return h.records; }).concat([1]));
  var xs = function (i) { return pad + (hist.length > 1 ? i * (tw - 2 * pad) / (hist.length - 1) : (tw - 2 * pad) / 2); };
  var ys = function (v) { return th - pad - v * (th - 2 * pad) / tmax; };
  el('line', { x1: pad, y1: th - pad, x2: tw - pad, y2: th - pad, stroke: '#888' }, tsvg);
  el('line', { x1: pad, y1: pad, x2: pad, y2: th - pad, stroke: '#888' }, tsvg);
  var top = el('text', { x: 2, y: pad, 'font-size': 11 }, tsvg); top.textContent = String(tmax);
  el('polyline', { fill: 'none', stroke: '#2b6cb0', 'stroke-width': 2,
    points: hist.map(function (h, i) { return xs(i) + ',' + ys(h.records); }).join(' ') }, tsvg);
  hist.forEach(function (h, i) {
    var c = el('circle', { class: 'trend-point', cx: xs(i), cy: ys(h.records), r: 4, fill: h.date === data.date ? '#c62828' : '#2b6cb0', 'data-date': h.date }, tsvg);
    var t = el('title', {}, c); t.textContent = h.date + ': ' + h.records + ' defects';
  });
  [0, hist.length - 1].forEach(function (i) {
    if (!hist[i]) return;
    var lab = el('text', { x: xs(i), y: th - pad + 16, 'font-size': 11, 'text-anchor': 'middle' }, tsvg); lab.textContent = hist[i].date;
  });

  // Segment table with sorting.
  var segs = Object.keys(result.segments).map(function (id) {
    var s = result.segments[id];
    return { id: id, count: s.count, low: s.severity.low, medium: s.severity.medium, high: s.severity.high,
      critical: s.severity.critical, mean: s.depthMm.mean, max: s.depthMm.max };
  });
  var tbody = document.querySelector('#segments tbody'), sortKey = 'critical', desc = true;
  function fmt(v) { return v === null || v === undefined ? '-' : String(v); }
  function draw() {
    segs.sort(function (a, b) {
      var x = a[sortKey], y = b[sortKey];
      if (x === y) return a.id < b.id ? -1 : 1;
      if (x === null) return 1; if (y === null) return -1;
      return (x < y ? -1 : 1) * (desc ? -1 : 1);
    });
    tbody.textContent = '';
    segs.forEach(function (s) {
      var tr = document.createElement('tr');
      ['id', 'count', 'low', 'medium', 'high', 'critical', 'mean', 'max'].forEach(function (k) {
        var td = document.createElement('td'); td.textContent = fmt(s[k]); tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
    document.querySelectorAll('#segments th').forEach(function (h) {
      h.className = h.getAttribute('data-key') === sortKey ? (desc ? 'sorted-desc' : 'sorted-asc') : '';
    });
  }
  document.querySelectorAll('#segments th').forEach(function (h) {
    h.addEventListener('click', function () {
      var k = h.getAttribute('data-key');
      if (k === sortKey) desc = !desc; else { sortKey = k; desc = k !== 'id'; }
      draw();
    });
  });
  draw();

  // Jobs panel: the run behind each day, newest first.
  var jb = document.querySelector('#jobs tbody');
  hist.slice().reverse().forEach(function (h) {
    var tr = document.createElement('tr');
    [h.date, h.job.jobId, h.job.status, (h.job.durationMs / 1000).toFixed(1) + ' s', h.job.records, h.job.rejected].forEach(function (v, i) {
      var td = document.createElement('td'); td.textContent = String(v);
      if (i === 2) td.className = 'status-' + String(v).replace(/[^a-z]/g, '');
      tr.appendChild(td);
    });
    jb.appendChild(tr);
  });
})();
`;
