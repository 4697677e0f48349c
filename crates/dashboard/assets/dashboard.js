// recops dashboard: live refresh and charts. No inline code anywhere (the CSP is
// default-src 'self'); every page works without this file, only less live.
(function () {
  'use strict';

  // Errors and CSP violations are collected for the browser tests.
  window.__recopsErrors = window.__recopsErrors || [];
  window.addEventListener('error', function (e) { window.__recopsErrors.push(String(e.message)); });
  window.addEventListener('unhandledrejection', function (e) { window.__recopsErrors.push('unhandled: ' + String(e.reason)); });
  document.addEventListener('securitypolicyviolation', function (e) {
    window.__recopsErrors.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI);
  });

  var COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#475569', '#ea580c'];
  var body = document.body;
  var tz = body.dataset.tz || 'UTC';
  var refreshMs = (parseInt(body.dataset.refreshSeconds, 10) || 15) * 1000;
  var plots = new Map(); // data-src -> { el, plot }

  function tzDate(ts) {
    try { return uPlot.tzDate(new Date(ts * 1000), tz); } catch (e) { return new Date(ts * 1000); }
  }

  // Vertical lines for events (model reloads).
  function marksPlugin(marks) {
    return {
      hooks: {
        draw: [function (u) {
          if (!marks || !marks.length) { return; }
          var ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = '#9333ea';
          ctx.fillStyle = '#9333ea';
          ctx.setLineDash([4, 4]);
          ctx.font = '11px sans-serif';
          marks.forEach(function (m) {
            var x = Math.round(u.valToPos(m.x, 'x', true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) { return; }
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            ctx.fillText(m.label, x + 3, u.bbox.top + 12);
          });
          ctx.restore();
        }]
      }
    };
  }

  function options(chart, width) {
    var many = chart.x.length > 60;
    return {
      width: width,
      height: 240,
      tzDate: tzDate,
      scales: { x: { time: chart.x_kind === 'time' } },
      axes: [{ label: chart.x_label }, { label: chart.y_label, size: 60 }],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      series: [{ label: chart.x_label }].concat(chart.series.map(function (s, i) {
        return { label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: { show: !many } };
      })),
      plugins: [marksPlugin(chart.marks)]
    };
  }

  function showState(el, panel) {
    var text = panel.hint || panel.notice || panel.message || 'no data';
    el.dataset.points = '0';
    el.dataset.drawn = 'empty';
    var p = el.querySelector('p.chart-note') || document.createElement('p');
    p.className = 'chart-note ' + (panel.state === 'empty' ? 'empty' : 'stale');
    p.textContent = text;
    if (!p.parentNode) { el.appendChild(p); }
  }

  function countPoints(chart) {
    return chart.series.reduce(function (n, s) {
      return n + s.values.filter(function (v) { return v !== null; }).length;
    }, 0);
  }

  function draw(el) {
    var src = el.dataset.src;
    return fetch(src, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) { return r.json(); })
      .then(function (panel) {
        var entry = plots.get(src);
        if (panel.state !== 'ready') {
          if (panel.state === 'stale' && entry) { return; } // keep the last drawing
          if (entry) { entry.plot.destroy(); plots.delete(src); el.uplot = null; }
          showState(el, panel);
          return;
        }
        var chart = panel.data;
        var data = [chart.x].concat(chart.series.map(function (s) { return s.values; }));
        var note = el.querySelector('p.chart-note');
        if (note) { note.remove(); }
        if (entry && entry.el === el && entry.plot.series.length === data.length) {
          entry.plot.setData(data);
        } else {
          if (entry) { entry.plot.destroy(); }
          var plot = new uPlot(options(chart, Math.max(el.clientWidth, 320)), data, el);
          plots.set(src, { el: el, plot: plot });
          el.uplot = plot; // for the browser tests: axes, ticks, data
        }
        el.dataset.points = String(countPoints(chart));
        el.dataset.drawn = 'chart';
      })
      .catch(function (e) { el.dataset.drawn = 'error'; window.__recopsErrors.push('chart ' + src + ': ' + e); });
  }

  function drawAll(root) {
    return Promise.all(Array.prototype.map.call(root.querySelectorAll('.chart[data-src]'), draw));
  }

  // Live refresh: fetch this page's <main> content and swap it in, keeping charts
  // (redrawn from their API) and keeping a panel's old content when it is stale.
  function refresh() {
    var main = document.getElementById('main');
    var active = document.activeElement;
    if (!main || (active && active.closest && active.closest('form'))) { return Promise.resolve(false); }
    return fetch(location.href, { headers: { 'X-Recops-Fragment': '1' }, credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString('<div id="fresh">' + html + '</div>', 'text/html');
        var fresh = doc.getElementById('fresh');
        fresh.querySelectorAll('[data-panel][data-state="stale"]').forEach(function (p) {
          var old = main.querySelector('[data-panel="' + p.dataset.panel + '"]');
          if (old && old.dataset.state === 'ready') {
            var notice = p.querySelector('.stale');
            p.replaceWith(old);
            if (notice) { old.appendChild(notice); }
          }
        });
        fresh.querySelectorAll('.chart[data-src]').forEach(function (c) {
          var entry = plots.get(c.dataset.src);
          if (entry) { c.replaceWith(entry.el); }
        });
        var title = main.querySelector('h1');
        main.replaceChildren.apply(main, (title ? [title] : []).concat(Array.prototype.slice.call(fresh.childNodes)));
        stamp();
        return drawAll(main).then(function () { return true; });
      })
      .catch(function (e) { window.__recopsStaleRefresh = String(e); return false; });
  }

  function stamp() {
    var u = document.getElementById('updated');
    if (u) { u.textContent = 'updated ' + new Date().toLocaleTimeString(); }
  }

  function start() {
    stamp();
    drawAll(document).then(function () { document.body.dataset.chartsReady = '1'; });
    setInterval(refresh, refreshMs);
    window.recopsRefresh = refresh; // the browser tests refresh without waiting
    var resize;
    window.addEventListener('resize', function () {
      clearTimeout(resize);
      resize = setTimeout(function () {
        plots.forEach(function (e) { e.plot.setSize({ width: Math.max(e.el.clientWidth, 320), height: 240 }); });
      }, 200);
    });
  }

  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
})();
