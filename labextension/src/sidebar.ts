/**
 * The left sidebar "Distillation runs": every run under the runs root with a live status badge,
 * family and method, elapsed time and a sparkline of its main loss. It polls the server with
 * back-off and stops polling while it is hidden.
 */
import { refreshIcon } from '@jupyterlab/ui-components';

import { RunSummary, RunsReply, api } from './api';
import { badge, elapsed, formatElapsed, formatValue } from './chartdata';
import { PALETTE, Sparkline } from './charts';
import { distillIcon } from './icons';
import { LiveWidget } from './live';

export interface RunsSidebarOptions {
  /** Opens the viewer of a run. */
  open: (id: string) => void;
  /** Opens the first tutorial (offered when there is no run yet), if there is one. */
  openTour?: () => void;
}

const SPARK_COLORS: Record<string, string> = {
  running: PALETTE[0],
  finished: PALETTE[2],
  stopped: PALETTE[1],
  failed: PALETTE[3]
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = ''): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

/** The badge of a run's state (`running`, `stopping`, `finished`, `stopped`, `failed`, `lost`). */
export function badgeNode(state: string): HTMLElement {
  const node = el('span', `jp-nbdistill-badge jp-mod-${state}`, state);
  node.dataset.state = state;
  return node;
}

export function updateBadge(node: HTMLElement, state: string): void {
  if (node.dataset.state !== state) {
    node.className = `jp-nbdistill-badge jp-mod-${state}`;
    node.textContent = state;
    node.dataset.state = state;
  }
}

class RunRow {
  readonly node = el('li', 'jp-nbdistill-run');
  run: RunSummary;
  private readonly badge: HTMLElement;
  private readonly method = el('span', 'jp-nbdistill-run-method');
  private readonly elapsed = el('span', 'jp-nbdistill-run-elapsed');
  private readonly ident = el('div', 'jp-nbdistill-run-id');
  private readonly loss = el('span', 'jp-nbdistill-run-loss');
  private readonly progress = el('span', 'jp-nbdistill-run-progress');
  private readonly spark = new Sparkline();

  constructor(run: RunSummary, open: (id: string) => void) {
    this.run = run;
    this.badge = badgeNode(badge(run));
    const top = el('div', 'jp-nbdistill-run-top');
    top.append(this.badge, this.method, this.elapsed);
    const bottom = el('div', 'jp-nbdistill-run-bottom');
    const numbers = el('div', 'jp-nbdistill-run-numbers');
    numbers.append(this.loss, this.progress);
    bottom.append(this.spark.node, numbers);
    this.node.append(top, this.ident, bottom);
    this.node.tabIndex = 0;
    this.node.dataset.runId = run.id;
    this.node.addEventListener('click', () => open(this.run.id));
    this.node.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        open(this.run.id);
      }
    });
  }

  update(run: RunSummary, now: number): void {
    const sparkChanged = run.events !== this.run.events || run.status !== this.run.status || !this.node.dataset.status;
    this.run = run;
    const state = badge(run);
    updateBadge(this.badge, state);
    this.node.dataset.status = run.status;
    this.method.textContent = run.method ?? 'unreadable run';
    this.ident.textContent = `${run.family ?? '?'} · ${run.id}`;
    this.node.title = [
      `${run.method ?? 'unreadable run'} (${state})`,
      `run ${run.id}`,
      run.started ? `started ${new Date(run.started * 1000).toLocaleString()}` : '',
      run.error ? `error: ${run.error}` : '',
      'click to open its charts'
    ]
      .filter(Boolean)
      .join('\n');
    const value = run.main ? run.metrics[run.main] : undefined;
    this.loss.textContent = run.main ? `${run.main.replace(/^train\//, '')} ${formatValue(value)}` : 'no metrics yet';
    this.progress.textContent = `epoch ${run.epoch} · step ${run.step}`;
    if (sparkChanged) {
      this.spark.update(run.spark, SPARK_COLORS[run.status] ?? PALETTE[7]);
    }
    this.tick(now);
  }

  tick(now: number): void {
    this.elapsed.textContent = formatElapsed(elapsed(this.run, now));
  }

  dispose(): void {
    this.spark.dispose();
    this.node.remove();
  }
}

export class RunsSidebar extends LiveWidget {
  private readonly options: RunsSidebarOptions;
  private readonly rows = new Map<string, RunRow>();
  private readonly list = el('ul', 'jp-nbdistill-runs');
  private readonly summary = el('div', 'jp-nbdistill-sidebar-summary');
  private readonly banner = el('div', 'jp-nbdistill-banner');
  private readonly empty = el('div', 'jp-nbdistill-empty');
  private readonly footer = el('div', 'jp-nbdistill-sidebar-footer');
  private signature = '';
  /** Server clock minus browser clock, in seconds. */
  private skew = 0;

  constructor(options: RunsSidebarOptions) {
    super({ minInterval: 1000, maxInterval: 8000, errorInterval: 30000 });
    this.options = options;
    this.id = 'nbdistill-runs';
    this.addClass('jp-nbdistill-sidebar');
    this.title.icon = distillIcon;
    this.title.caption = 'Distillation runs';

    const header = el('div', 'jp-nbdistill-sidebar-header');
    const heading = el('div', 'jp-nbdistill-sidebar-title', 'Distillation runs');
    const refresh = el('button', 'jp-nbdistill-icon-button');
    refresh.title = 'Refresh now';
    refresh.setAttribute('aria-label', 'Refresh the runs');
    refresh.appendChild(refreshIcon.element({ tag: 'span' }));
    refresh.addEventListener('click', () => void this.poller.wake());
    header.append(heading, refresh);

    this.banner.hidden = true;
    this.empty.hidden = true;
    this.node.append(header, this.summary, this.banner, this.empty, this.list, this.footer);
  }

  /** The browser's idea of the server's clock (Unix seconds). */
  get now(): number {
    return Date.now() / 1000 + this.skew;
  }

  /** Fetches the runs and redraws; resolves whether anything changed since the last time. */
  async refresh(): Promise<boolean> {
    let reply: RunsReply;
    try {
      reply = await api.runs();
    } catch (error) {
      this.banner.textContent = `Cannot list the runs: ${(error as Error).message}. Is the nbdistill server extension enabled? Retrying…`;
      this.banner.hidden = false;
      throw error;
    }
    this.banner.hidden = true;
    this.skew = reply.time - Date.now() / 1000;
    this.render(reply);
    const signature = reply.runs.map(r => `${r.id}:${r.status}:${r.events}:${r.stop_requested}:${r.alive}`).join('|');
    const changed = signature !== this.signature;
    this.signature = signature;
    return changed;
  }

  private render(reply: RunsReply): void {
    const now = this.now;
    const seen = new Set<string>();
    reply.runs.forEach((run, i) => {
      seen.add(run.id);
      let row = this.rows.get(run.id);
      if (!row) {
        row = new RunRow(run, this.options.open);
        this.rows.set(run.id, row);
      }
      row.update(run, now);
      if (this.list.children[i] !== row.node) {
        this.list.insertBefore(row.node, this.list.children[i] ?? null);
      }
    });
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.dispose();
        this.rows.delete(id);
      }
    }
    const running = reply.runs.filter(r => r.status === 'running').length;
    this.summary.textContent = reply.runs.length
      ? `${running} running · ${reply.runs.length} run${reply.runs.length === 1 ? '' : 's'}`
      : '';
    this.renderEmpty(reply.runs.length === 0);
    // Marks keep the leading "/" in place under the right-to-left ellipsis (it cuts the start).
    this.footer.textContent = `\u200e${reply.root}\u200e`;
    this.footer.title = `Runs root (NBDISTILL_RUNS): ${reply.root}`;
  }

  private renderEmpty(isEmpty: boolean): void {
    this.empty.hidden = !isEmpty;
    if (!isEmpty || this.empty.childElementCount) {
      return;
    }
    this.empty.append(
      el('p', '', 'No runs yet.'),
      el('p', '', 'Start one from a notebook, e.g. nd.fit("kd.hinton", …) or nd.panel("kd", …); it appears here while it trains.')
    );
    if (this.options.openTour) {
      const tour = el('button', 'jp-Button jp-mod-styled jp-mod-accept', 'Open the tour');
      tour.addEventListener('click', () => this.options.openTour?.());
      this.empty.appendChild(tour);
    }
  }

  protected onClock(): void {
    const now = this.now;
    for (const row of this.rows.values()) {
      if (row.run.status === 'running') {
        row.tick(now);
      }
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    for (const row of this.rows.values()) {
      row.dispose();
    }
    this.rows.clear();
    super.dispose();
  }
}
