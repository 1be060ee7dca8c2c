/**
 * The run viewer (main area): a run's live charts — scalars as lines, histograms as bars, points
 * as scatter, images, tables — with its hyper-parameters, its error if it failed, a Stop button
 * while it runs and its static matplotlib plot on demand. It tails `events.jsonl` by byte offset
 * and stops polling while its tab is hidden.
 */

import { ApiError, RunInfo, api } from './api';
import {
  badge,
  elapsed,
  formatElapsed,
  formatValue,
  groupScalars,
  groupSeries,
  histogramBars,
  isMatrix,
  pointsSeries,
  settingRows,
  shortName
} from './chartdata';
import { BarChart, LineChart, ScatterChart } from './charts';
import { RunEventStore } from './events';
import { distillIcon } from './icons';
import { LiveWidget } from './live';
import { badgeNode, updateBadge } from './sidebar';

/** Pages of events read per poll while catching up with a long run. */
const MAX_PAGES_PER_TICK = 8;
/** Rows of a table event shown (the rest are counted). */
const MAX_TABLE_ROWS = 50;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = ''): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

function section(title: string): { node: HTMLElement; grid: HTMLElement } {
  const node = el('section', 'jp-nbdistill-section');
  node.append(el('h3', 'jp-nbdistill-section-title', title));
  const grid = el('div', 'jp-nbdistill-grid');
  node.appendChild(grid);
  node.hidden = true;
  return { node, grid };
}

function formatParam(value: unknown): string {
  if (typeof value === 'number') {
    return formatValue(value);
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

interface Keyed<T> {
  get(key: string): T | undefined;
  set(key: string, value: T): void;
}

/** A collapsible table of `[label, text]` rows, rebuilt only when they change (keeping it open or closed). */
function fillDetails(node: HTMLDetailsElement, summary: string, rows: [string, string][]): void {
  node.hidden = rows.length === 0;
  const signature = JSON.stringify(rows);
  if (node.dataset.signature === signature) {
    return;
  }
  const open = node.childElementCount ? node.open : true;
  node.dataset.signature = signature;
  node.replaceChildren(el('summary', '', summary));
  const table = el('table', 'jp-nbdistill-table');
  for (const [label, text] of rows) {
    const row = el('tr');
    row.append(el('th', '', label), el('td', '', text));
    table.appendChild(row);
  }
  node.appendChild(table);
  node.open = open;
}

function getOrCreate<T extends { node: HTMLElement }>(map: Keyed<T>, key: string, grid: HTMLElement, make: () => T): T {
  let item = map.get(key);
  if (!item) {
    item = make();
    map.set(key, item);
    grid.appendChild(item.node);
  }
  return item;
}

/** The values of scalars logged once, as a table. */
class ValuesCard {
  readonly node = el('div', 'jp-nbdistill-card jp-nbdistill-values');
  private readonly caption = el('div', 'jp-nbdistill-card-title');
  private readonly table = el('table', 'jp-nbdistill-table');

  constructor(private readonly title: string) {
    this.node.append(this.caption, this.table);
  }

  update(rows: [string, number][], step?: number): void {
    this.caption.textContent = step === undefined ? this.title : `${this.title} (step ${step})`;
    this.table.replaceChildren(
      ...rows.map(([name, value]) => {
        const tr = el('tr');
        tr.append(el('th', '', name), el('td', '', formatValue(value)));
        return tr;
      })
    );
  }

  dispose(): void {
    this.node.remove();
  }
}

class ImageCard {
  readonly node = el('figure', 'jp-nbdistill-card jp-nbdistill-image');
  private readonly img = el('img');
  private readonly caption = el('figcaption', 'jp-nbdistill-card-title');
  private path = '';
  private url = '';

  constructor(private readonly runId: string) {
    this.node.append(this.caption, this.img);
  }

  async show(name: string, path: string, step: number): Promise<void> {
    this.caption.textContent = `${name} (step ${step})`;
    if (path === this.path) {
      return;
    }
    this.path = path;
    const blob = await api.media(this.runId, path);
    if (this.url) {
      URL.revokeObjectURL(this.url);
    }
    this.url = URL.createObjectURL(blob);
    this.img.src = this.url;
    this.img.alt = name;
  }

  dispose(): void {
    if (this.url) {
      URL.revokeObjectURL(this.url);
    }
  }
}

export class RunViewer extends LiveWidget {
  readonly runId: string;
  readonly store = new RunEventStore();
  info: RunInfo | null = null;
  private offset = 0;
  private skew = 0;
  private drawnCount = -1;
  private plotUrl = '';

  private readonly methodNode = el('h2', 'jp-nbdistill-viewer-method');
  private readonly badgeNode = badgeNode('…');
  private readonly meta = el('div', 'jp-nbdistill-viewer-meta');
  private readonly stopButton = el('button', 'jp-Button jp-mod-styled jp-mod-warn jp-nbdistill-stop', 'Stop');
  private readonly plotButton = el('button', 'jp-Button jp-mod-styled jp-mod-reject jp-nbdistill-plot-button', 'Static plot');
  private readonly message = el('div', 'jp-nbdistill-banner');
  private readonly error = el('pre', 'jp-nbdistill-error');
  private readonly params = el('details', 'jp-nbdistill-params');
  private readonly setting = el('details', 'jp-nbdistill-setting');
  private readonly scalars = section('Scalars');
  private readonly histograms = section('Histograms');
  private readonly points = section('Points');
  private readonly images = section('Images');
  private readonly tables = section('Tables');
  private readonly plot = section('Static plot (as run.plot() draws it)');
  private readonly lineCharts = new Map<string, LineChart>();
  private readonly valueCards = new Map<string, ValuesCard>();
  private readonly barCharts = new Map<string, BarChart>();
  private readonly scatterCharts = new Map<string, ScatterChart>();
  private readonly imageCards = new Map<string, ImageCard>();
  private readonly tableCards = new Map<string, { node: HTMLElement }>();

  constructor(runId: string) {
    super({ minInterval: 1000, maxInterval: 10000, errorInterval: 30000 });
    this.runId = runId;
    this.id = `nbdistill-run-${runId}`;
    this.addClass('jp-nbdistill-viewer');
    this.title.label = runId;
    this.title.icon = distillIcon;
    this.title.closable = true;

    const header = el('div', 'jp-nbdistill-viewer-header');
    const heading = el('div', 'jp-nbdistill-viewer-heading');
    heading.append(this.methodNode, this.badgeNode);
    const actions = el('div', 'jp-nbdistill-viewer-actions');
    this.stopButton.title = 'Stop this run after its current batch (it writes the run’s stop-request)';
    this.stopButton.hidden = true;
    this.stopButton.addEventListener('click', () => void this.stop());
    this.plotButton.title = 'Draw this run’s views with matplotlib, as run.plot() does';
    this.plotButton.addEventListener('click', () => void this.showPlot());
    actions.append(this.stopButton, this.plotButton);
    header.append(heading, actions);
    this.message.hidden = true;
    this.error.hidden = true;
    this.params.hidden = true;
    this.setting.hidden = true;
    this.node.append(
      header,
      this.meta,
      this.message,
      this.error,
      this.params,
      this.setting,
      this.scalars.node,
      this.histograms.node,
      this.points.node,
      this.images.node,
      this.tables.node,
      this.plot.node
    );
  }

  /** Reads the run's info and its new events, and redraws; resolves whether anything changed. */
  async refresh(): Promise<boolean> {
    let changed = false;
    try {
      const info = await api.run(this.runId);
      changed = !this.info || info.status !== this.info.status || info.stop_requested !== this.info.stop_requested;
      this.info = info;
      this.skew = info.time - Date.now() / 1000;
      for (let page = 0; page < MAX_PAGES_PER_TICK; page++) {
        const reply = await api.events(this.runId, this.offset);
        this.store.add(reply.events);
        const moved = reply.offset !== this.offset;
        this.offset = reply.offset;
        changed = changed || moved;
        if (!moved || this.offset >= reply.size) {
          break;
        }
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        this.showMessage(`Run ${this.runId} no longer exists under the runs root.`);
        this.poller.dispose();
        return false;
      }
      this.showMessage(`Cannot read run ${this.runId}: ${(error as Error).message}. Retrying…`);
      throw error;
    }
    this.showMessage('');
    this.renderHeader();
    if (this.store.count !== this.drawnCount) {
      this.renderCharts();
      this.drawnCount = this.store.count;
    }
    return changed;
  }

  private showMessage(text: string): void {
    this.message.textContent = text;
    this.message.hidden = !text;
  }

  private renderHeader(): void {
    const info = this.info;
    if (!info) {
      return;
    }
    const state = badge(info);
    const method = info.method ?? 'unreadable run';
    this.title.label = `${method} · ${this.runId.slice(-4)}`;
    this.title.caption = `${method} — run ${this.runId} (${state})`;
    this.methodNode.textContent = method;
    updateBadge(this.badgeNode, state);
    this.node.dataset.status = info.status;
    this.tick();
    const running = info.status === 'running';
    this.stopButton.hidden = !running;
    this.stopButton.disabled = info.stop_requested;
    this.stopButton.textContent = info.stop_requested ? 'Stopping…' : 'Stop';
    this.error.hidden = !info.error;
    this.error.textContent = info.error ?? '';
    this.renderParams(info.hparams ?? {});
    this.renderSetting(info);
  }

  private tick(): void {
    const info = this.info;
    if (!info) {
      return;
    }
    const started = info.started ? new Date(info.started * 1000).toLocaleString() : '?';
    const now = Date.now() / 1000 + this.skew;
    this.meta.textContent = [
      info.family ?? '?',
      `run ${this.runId}`,
      `started ${started}`,
      `${info.status === 'running' ? 'running for' : 'took'} ${formatElapsed(elapsed(info, now))}`,
      `epoch ${info.epoch} · step ${info.step}`,
      `${this.store.count} events`
    ].join('  ·  ');
  }

  private renderParams(hparams: Record<string, unknown>): void {
    const rows = Object.entries(hparams).map(([key, value]): [string, string] => [key, formatParam(value)]);
    fillDetails(this.params, `Hyper-parameters (${rows.length})`, rows);
  }

  /** What was trained: student, teacher(s), data and its splits (`run.json`'s `setting`). */
  private renderSetting(info: RunInfo): void {
    fillDetails(this.setting, 'What was trained', settingRows(info.setting));
  }

  private renderCharts(): void {
    const store = this.store;
    const groups = groupScalars(store.scalars.keys());
    groups.forEach((group, order) => {
      const once = group.names.every(name => (store.scalars.get(name)?.values.length ?? 0) <= 1);
      // A group measured once (e.g. `test/*` at the end) reads better as numbers than as dots.
      const stale = once ? this.lineCharts : this.valueCards;
      stale.get(group.key)?.dispose();
      stale.delete(group.key);
      const card = once
        ? getOrCreate(this.valueCards, group.key, this.scalars.grid, () => new ValuesCard(group.title))
        : getOrCreate(this.lineCharts, group.key, this.scalars.grid, () => new LineChart(group.title, group.key === 'train'));
      card.node.dataset.group = group.key;
      card.node.style.order = String(order);
      if (card instanceof ValuesCard) {
        card.update(group.names.map(name => [shortName(name, group.key), store.last(name) ?? NaN]), store.scalars.get(group.names[0])?.steps[0]);
      } else {
        card.update(groupSeries(store, group));
      }
    });
    this.scalars.node.hidden = groups.length === 0;

    for (const [name, event] of store.histograms) {
      const chart = getOrCreate(this.barCharts, name, this.histograms.grid, () => new BarChart(name));
      chart.setTitle(`${name} (step ${event.step})`);
      chart.update(histogramBars(event));
    }
    this.histograms.node.hidden = store.histograms.size === 0;

    for (const [name, events] of store.points) {
      const chart = getOrCreate(this.scatterCharts, name, this.points.grid, () => new ScatterChart(name));
      chart.setTitle(`${name} (step ${events[0].step})`);
      chart.update(pointsSeries(events));
    }
    this.points.node.hidden = store.points.size === 0;

    for (const [name, event] of store.images) {
      const card = getOrCreate(this.imageCards, name, this.images.grid, () => new ImageCard(this.runId));
      card.show(name, event.path, event.step).catch(error => this.showMessage(`Cannot load image ${event.path}: ${error.message}`));
    }
    this.images.node.hidden = store.images.size === 0;

    for (const [name, event] of store.tables) {
      const card = getOrCreate(this.tableCards, name, this.tables.grid, () => ({ node: el('div', 'jp-nbdistill-card jp-nbdistill-table-card') }));
      const table = el('table', 'jp-nbdistill-table');
      const rows = event.rows.slice(0, MAX_TABLE_ROWS);
      const shade = isMatrix(event.columns, event.rows);
      const head = el('tr');
      if (shade) {
        head.appendChild(el('th')); // a matrix's rows carry the same labels as its columns
      }
      event.columns.forEach(c => head.appendChild(el('th', '', String(c))));
      table.appendChild(head);
      const numbers = shade ? (rows.flat() as number[]) : [];
      const top = Math.max(0, ...numbers.map(Math.abs));
      rows.forEach((row, r) => {
        const tr = el('tr');
        if (shade) {
          tr.appendChild(el('th', '', String(event.columns[r])));
        }
        for (const cell of row) {
          const td = el('td', '', formatParam(cell));
          if (shade && typeof cell === 'number' && top > 0) {
            // Shading by magnitude turns a matrix (e.g. teacher–student agreement) into a heat map.
            td.style.background = `rgba(31, 119, 180, ${((0.55 * Math.abs(cell)) / top).toFixed(3)})`;
          }
          tr.appendChild(td);
        }
        table.appendChild(tr);
      });
      const more = event.rows.length > MAX_TABLE_ROWS ? ` — first ${MAX_TABLE_ROWS} of ${event.rows.length} rows` : '';
      card.node.replaceChildren(el('div', 'jp-nbdistill-card-title', `${name} (step ${event.step})${more}`), table);
    }
    this.tables.node.hidden = store.tables.size === 0;
  }

  /** Asks the server to stop the run (it writes the run's stop-request). */
  async stop(): Promise<void> {
    this.stopButton.disabled = true;
    this.stopButton.textContent = 'Stopping…';
    try {
      await api.stop(this.runId);
    } catch (error) {
      this.showMessage(`Cannot stop run ${this.runId}: ${(error as Error).message}`);
      this.stopButton.disabled = false;
      this.stopButton.textContent = 'Stop';
    }
    await this.poller.wake();
  }

  /** Shows the run's static plot (drawn by the server with matplotlib). */
  async showPlot(): Promise<void> {
    this.plotButton.disabled = true;
    try {
      const blob = await api.plot(this.runId);
      if (this.plotUrl) {
        URL.revokeObjectURL(this.plotUrl);
      }
      this.plotUrl = URL.createObjectURL(blob);
      const img = el('img', 'jp-nbdistill-static-plot');
      img.src = this.plotUrl;
      img.alt = `static plot of run ${this.runId}`;
      this.plot.grid.replaceChildren(img);
      this.plot.node.hidden = false;
      this.plot.node.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    } catch (error) {
      this.showMessage(`Cannot draw the static plot: ${(error as Error).message}`);
    } finally {
      this.plotButton.disabled = false;
    }
  }

  protected onClock(): void {
    if (this.info?.status === 'running') {
      this.tick();
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    for (const charts of [this.lineCharts, this.barCharts, this.scatterCharts]) {
      for (const chart of charts.values()) {
        chart.dispose();
      }
    }
    for (const card of this.imageCards.values()) {
      card.dispose();
    }
    if (this.plotUrl) {
      URL.revokeObjectURL(this.plotUrl);
    }
    super.dispose();
  }
}
