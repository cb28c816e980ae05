// A small live line chart on a canvas: one series per line, each with its own scale, drawn on demand.
export class LiveChart {
  constructor(canvas, series) {
    this.canvas = canvas;
    this.series = series; // [{name, colour, unit}]
    this.points = series.map(() => []); // [t_ms, value]
    this.windowMs = 120000;
    this.marks = []; // [t_ms, label, colour]: events drawn as vertical lines
  }

  mark(t, label, colour = "#a40e26") {
    this.marks.push([t, label, colour]);
    while (this.marks.length && this.marks[0][0] < t - this.windowMs) this.marks.shift();
  }

  add(index, t, value) {
    if (value === null || value === undefined || Number.isNaN(value)) return;
    const pts = this.points[index];
    pts.push([t, value]);
    const cut = t - this.windowMs;
    while (pts.length && pts[0][0] < cut) pts.shift();
  }

  last(index) {
    const pts = this.points[index];
    return pts.length ? pts[pts.length - 1][1] : null;
  }

  draw(now = Date.now()) {
    const c = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (c.width !== Math.round(w * ratio)) c.width = Math.round(w * ratio);
    if (c.height !== Math.round(h * ratio)) c.height = Math.round(h * ratio);
    const g = c.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, h);
    const left = 8;
    const top = 22;
    const bottom = h - 18;
    const right = w - 8;
    g.strokeStyle = "#c9d0d8";
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(left, bottom + 0.5);
    g.lineTo(right, bottom + 0.5);
    g.stroke();
    g.font = "12px system-ui, sans-serif";
    g.fillStyle = "#4d5560";
    g.fillText(`last ${this.windowMs / 1000} s`, left, h - 4);
    for (const [t, label, colour] of this.marks) {
      const x = right - ((now - t) / this.windowMs) * (right - left);
      if (x < left) continue;
      g.strokeStyle = colour;
      g.lineWidth = 1;
      g.setLineDash([4, 3]);
      g.beginPath();
      g.moveTo(x + 0.5, top);
      g.lineTo(x + 0.5, bottom);
      g.stroke();
      g.setLineDash([]);
      g.fillStyle = colour;
      g.fillText(label, Math.min(x + 3, right - g.measureText(label).width), top + 12);
    }
    let legendX = left;
    this.series.forEach((s, i) => {
      const pts = this.points[i];
      const max = Math.max(1, ...pts.map((p) => p[1])) * 1.15;
      g.strokeStyle = s.colour;
      g.lineWidth = 2;
      g.beginPath();
      pts.forEach(([t, v], j) => {
        const x = right - ((now - t) / this.windowMs) * (right - left);
        const y = bottom - (v / max) * (bottom - top);
        if (j === 0) g.moveTo(x, y);
        else g.lineTo(x, y);
      });
      g.stroke();
      const last = this.last(i);
      const label = `${s.name}: ${last === null ? "-" : Math.round(last).toLocaleString("en")} ${s.unit}` +
        ` (max ${Math.round(max / 1.15).toLocaleString("en")})`;
      g.fillStyle = s.colour;
      g.fillRect(legendX, 6, 12, 4);
      g.fillStyle = "#1b1f24";
      g.fillText(label, legendX + 16, 12);
      legendX += g.measureText(label).width + 36;
    });
  }
}
