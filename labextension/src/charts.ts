/**
 * Chart.js charts in cards: lines for scalars, bars for histograms, scatter for points, and the
 * sidebar's sparklines. Each card updates its chart in place (so legend toggles survive updates)
 * and records how many points it draws in `data-points` (what the browser tests read).
 */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LogarithmicScale,
  LineElement,
  PointElement,
  ScatterController,
  Tooltip
} from 'chart.js';

import { Bars, Series, formatValue } from './chartdata';

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  ScatterController,
  Tooltip
);

/** Matplotlib's `tab10`, so these charts and the Python views colour runs alike. */
export const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf'
];

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

interface Theme {
  text: string;
  muted: string;
  grid: string;
  font: string;
}

function theme(): Theme {
  return {
    text: cssVar('--jp-ui-font-color1', '#333'),
    muted: cssVar('--jp-ui-font-color2', '#666'),
    grid: cssVar('--jp-border-color2', '#e0e0e0'),
    font: cssVar('--jp-ui-font-family', 'system-ui, sans-serif')
  };
}

function applyTheme(chart: Chart): void {
  const t = theme();
  chart.options.color = t.muted;
  chart.options.font = { family: t.font, size: 11 };
  for (const scale of Object.values(chart.options.scales ?? {})) {
    if (!scale) {
      continue;
    }
    const s = scale as { grid?: { color?: string }; ticks?: { color?: string }; title?: { color?: string } };
    s.grid = { ...s.grid, color: t.grid };
    s.ticks = { ...s.ticks, color: t.muted };
    s.title = { ...s.title, color: t.muted };
  }
}

/** 1, 2 and 5 times a power of ten: the ticks a log axis labels. */
function isRoundOnLog(v: number): boolean {
  const mantissa = v / Math.pow(10, Math.floor(Math.log10(v)));
  return [1, 2, 5].some(m => Math.abs(mantissa - m) < 1e-6);
}

function countPoints(series: { data: unknown[] }[]): number {
  return series.reduce((n, s) => n + s.data.length, 0);
}

/** A titled card holding one chart. */
abstract class ChartCard {
  readonly node: HTMLElement;
  protected readonly chart: Chart;
  private readonly titleNode: HTMLElement;

  constructor(title: string, className: string) {
    this.node = document.createElement('div');
    this.node.className = `jp-nbdistill-card ${className}`;
    this.titleNode = document.createElement('div');
    this.titleNode.className = 'jp-nbdistill-card-title';
    const box = document.createElement('div');
    box.className = 'jp-nbdistill-chart';
    const canvas = document.createElement('canvas');
    box.appendChild(canvas);
    this.node.append(this.titleNode, box);
    this.setTitle(title);
    this.chart = this.create(canvas);
    this.node.dataset.points = '0';
  }

  setTitle(title: string): void {
    this.titleNode.textContent = title;
  }

  dispose(): void {
    this.chart.destroy();
    this.node.remove();
  }

  protected abstract create(canvas: HTMLCanvasElement): Chart;

  protected redraw(points: number): void {
    applyTheme(this.chart);
    this.chart.update('none');
    this.node.dataset.points = String(points);
  }
}

type Dataset = Chart['data']['datasets'][number] & { label?: string };

/** Reuses the dataset of the same label (keeping its legend state), adds new ones, drops the rest. */
function syncDatasets(chart: Chart, series: Series[], style: (s: Series, i: number) => Partial<Dataset>): void {
  const old = new Map((chart.data.datasets as Dataset[]).map(d => [d.label, d]));
  chart.data.datasets = series.map((s, i) => {
    const dataset = old.get(s.label) ?? ({ label: s.label } as Dataset);
    Object.assign(dataset, style(s, i), { data: s.data });
    return dataset;
  }) as Chart['data']['datasets'];
}

const common = {
  animation: false as const,
  responsive: true,
  maintainAspectRatio: false,
  normalized: true
};

export class LineChart extends ChartCard {
  /**
   * @param autoLog switch the y axis to a log scale when the values span orders of magnitude
   *   (for losses, as the Python views draw them; not for accuracies).
   */
  constructor(
    title: string,
    private readonly autoLog = false
  ) {
    super(title, 'jp-nbdistill-line');
  }

  protected create(canvas: HTMLCanvasElement): Chart {
    return new Chart(canvas, {
      type: 'line',
      data: { datasets: [] },
      options: {
        ...common,
        parsing: false,
        spanGaps: false,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        scales: {
          x: { type: 'linear', title: { display: true, text: 'step' } },
          y: { type: 'linear', ticks: { callback: v => formatValue(Number(v)) } }
        },
        plugins: {
          legend: { position: 'bottom', labels: { boxWidth: 10, boxHeight: 2 } },
          tooltip: { callbacks: { label: c => `${c.dataset.label}: ${formatValue(c.parsed.y)}` } }
        }
      }
    });
  }

  update(series: Series[]): void {
    const ys = series.flatMap(s => s.data.map(p => p.y)).filter((y): y is number => y !== null);
    const log = this.autoLog && ys.length > 1 && ys.every(y => y > 0) && Math.max(...ys) / Math.min(...ys) > 50;
    const y = this.chart.options.scales!.y!;
    if ((y.type === 'logarithmic') !== log) {
      this.chart.options.scales!.y = {
        type: log ? 'logarithmic' : 'linear',
        ticks: { callback: v => (!log || isRoundOnLog(Number(v)) ? formatValue(Number(v)) : '') }
      };
    }
    this.node.dataset.scale = log ? 'log' : 'linear';
    syncDatasets(this.chart, series, (s, i) => ({
      borderColor: PALETTE[i % PALETTE.length],
      backgroundColor: PALETTE[i % PALETTE.length],
      borderWidth: i === 0 ? 1.8 : 1.2,
      pointRadius: s.data.length <= 60 ? 2.5 : 0,
      pointHoverRadius: 3
    }));
    this.redraw(countPoints(series));
  }
}

export class BarChart extends ChartCard {
  constructor(title: string) {
    super(title, 'jp-nbdistill-bars');
  }

  protected create(canvas: HTMLCanvasElement): Chart {
    return new Chart(canvas, {
      type: 'bar',
      data: { labels: [], datasets: [{ label: 'count', data: [], backgroundColor: PALETTE[0] + 'cc' }] },
      options: {
        ...common,
        scales: { x: { type: 'category', grid: { display: false } }, y: { type: 'linear', beginAtZero: true } },
        datasets: { bar: { categoryPercentage: 1, barPercentage: 0.92 } },
        plugins: { legend: { display: false } }
      }
    });
  }

  update(bars: Bars): void {
    this.chart.data.labels = bars.labels;
    this.chart.data.datasets[0].data = bars.counts;
    this.redraw(bars.counts.length);
  }
}

export class ScatterChart extends ChartCard {
  constructor(title: string) {
    super(title, 'jp-nbdistill-scatter');
  }

  protected create(canvas: HTMLCanvasElement): Chart {
    return new Chart(canvas, {
      type: 'scatter',
      data: { datasets: [] },
      options: {
        ...common,
        parsing: false,
        scales: { x: { type: 'linear' }, y: { type: 'linear', ticks: { callback: v => formatValue(Number(v)) } } },
        plugins: {
          legend: { position: 'bottom', labels: { boxWidth: 8, boxHeight: 8 } },
          tooltip: { callbacks: { label: c => `${c.dataset.label}: (${formatValue(c.parsed.x)}, ${formatValue(c.parsed.y)})` } }
        }
      }
    });
  }

  update(series: Series[]): void {
    syncDatasets(this.chart, series, (_, i) => ({
      borderColor: PALETTE[i % PALETTE.length],
      backgroundColor: PALETTE[i % PALETTE.length] + 'aa',
      pointRadius: 3.5
    }));
    this.redraw(countPoints(series));
  }
}

/** A tiny axis-less line (the sidebar's loss trend). */
export class Sparkline {
  readonly node: HTMLElement;
  private readonly chart: Chart;

  constructor() {
    this.node = document.createElement('div');
    this.node.className = 'jp-nbdistill-spark';
    const canvas = document.createElement('canvas');
    this.node.appendChild(canvas);
    this.chart = new Chart(canvas, {
      type: 'line',
      data: { labels: [], datasets: [{ data: [], borderColor: PALETTE[0], borderWidth: 1.3, pointRadius: 0, tension: 0.25 }] },
      options: {
        ...common,
        events: [],
        layout: { padding: 2 },
        scales: { x: { display: false }, y: { display: false } },
        plugins: { legend: { display: false }, tooltip: { enabled: false } }
      }
    });
    this.node.dataset.points = '0';
  }

  update(values: number[], color: string = PALETTE[0]): void {
    // A loss that falls by orders of magnitude shows its later trend only on a log scale.
    const positive = values.length > 1 && values.every(v => v > 0);
    const log = positive && Math.max(...values) / Math.min(...values) > 20;
    this.chart.options.scales = { x: { display: false }, y: { display: false, type: log ? 'logarithmic' : 'linear' } };
    this.node.dataset.scale = log ? 'log' : 'linear';
    this.chart.data.labels = values.map((_, i) => i);
    const dataset = this.chart.data.datasets[0];
    dataset.data = values;
    (dataset as { borderColor?: string }).borderColor = color;
    this.chart.update('none');
    this.node.dataset.points = String(values.length);
  }

  dispose(): void {
    this.chart.destroy();
    this.node.remove();
  }
}
