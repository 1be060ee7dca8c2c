/**
 * From run events to what the charts draw, and the small formatting the sidebar shows.
 * Pure TypeScript (no DOM, no chart library), unit-tested in Node.
 */
import type { RunSetting } from './api';
import type { HistogramEvent, PointsEvent, RunEventStore, ScalarSeries } from './events';

export interface XY {
  x: number;
  y: number | null;
}

export interface Series {
  label: string;
  data: XY[];
}

/** Largest number of points one line of a chart draws; longer series are binned. */
export const MAX_LINE_POINTS = 500;

/**
 * At most `maxPoints` points of `(steps, values)`: consecutive bins of equal size reduced to the
 * mean step and mean finite value (like `nbdistill.widgets.views.decimate`). A bin with no finite
 * value gives `y: null`, which the chart draws as a gap.
 */
export function decimate(series: ScalarSeries, maxPoints = MAX_LINE_POINTS): XY[] {
  const { steps, values } = series;
  const n = Math.min(steps.length, values.length);
  const out: XY[] = [];
  if (n <= maxPoints) {
    for (let i = 0; i < n; i++) {
      out.push({ x: steps[i], y: Number.isFinite(values[i]) ? values[i] : null });
    }
    return out;
  }
  for (let b = 0; b < maxPoints; b++) {
    const lo = Math.floor((b * n) / maxPoints);
    const hi = Math.floor(((b + 1) * n) / maxPoints);
    let sx = 0;
    let sy = 0;
    let finite = 0;
    for (let i = lo; i < hi; i++) {
      sx += steps[i];
      if (Number.isFinite(values[i])) {
        sy += values[i];
        finite += 1;
      }
    }
    out.push({ x: sx / (hi - lo), y: finite ? sy / finite : null });
  }
  return out;
}

export interface ScalarGroup {
  /** The prefix shared by the group (`train`, `val`, …) or the scalar's own name. */
  key: string;
  title: string;
  names: string[];
}

const GROUP_ORDER = ['train', 'val', 'test'];
const GROUP_TITLES: Record<string, string> = {
  train: 'training (per step)',
  val: 'validation',
  test: 'test'
};

/**
 * Scalars grouped by the prefix before their first `/` (one chart per group): `train/*` first,
 * then `val/*`, `test/*`, then the other prefixes and the unprefixed names in the order given.
 */
export function groupScalars(names: Iterable<string>): ScalarGroup[] {
  const groups = new Map<string, string[]>();
  for (const name of names) {
    const slash = name.indexOf('/');
    const key = slash > 0 ? name.slice(0, slash) : name;
    const members = groups.get(key) ?? [];
    members.push(name);
    groups.set(key, members);
  }
  const rank = (key: string): number => {
    const i = GROUP_ORDER.indexOf(key);
    return i < 0 ? GROUP_ORDER.length : i;
  };
  return [...groups.entries()]
    .map(([key, members], order) => ({ key, members, order }))
    .sort((a, b) => rank(a.key) - rank(b.key) || a.order - b.order)
    .map(({ key, members }) => ({ key, title: GROUP_TITLES[key] ?? key, names: members }));
}

/** The label of scalar `name` inside its group: the part after the group's prefix. */
export function shortName(name: string, group: string): string {
  return name.startsWith(group + '/') ? name.slice(group.length + 1) : name;
}

/** One line per scalar of `group`, decimated. */
export function groupSeries(store: RunEventStore, group: ScalarGroup, maxPoints = MAX_LINE_POINTS): Series[] {
  return group.names.map(name => ({
    label: shortName(name, group.key),
    data: decimate(store.scalars.get(name) ?? { steps: [], values: [] }, maxPoints)
  }));
}

export interface Bars {
  labels: string[];
  counts: number[];
}

/** Bars of a histogram event: one per bin, labelled with the bin's center. */
export function histogramBars(event: HistogramEvent): Bars {
  const { edges, counts } = event;
  const labels = counts.map((_, i) => {
    const lo = edges[i];
    const hi = edges[i + 1];
    if (Number.isFinite(lo) && Number.isFinite(hi)) {
      return formatValue((lo + hi) / 2);
    }
    return Number.isFinite(lo) ? formatValue(lo) : String(i);
  });
  return { labels, counts: counts.map(c => (Number.isFinite(c) ? c : 0)) };
}

/**
 * Scatter series of the points events of one name at one step: `y` of each event (named by its
 * label, else by the event's name) and every extra numeric array (`teacher`, `student`, …) as a
 * series of its own.
 */
export function pointsSeries(events: PointsEvent[]): Series[] {
  const out: Series[] = [];
  const zip = (xs: number[], ys: number[]): XY[] =>
    xs
      .map((x, i) => ({ x, y: Number.isFinite(ys[i]) ? ys[i] : null }))
      .filter(p => Number.isFinite(p.x));
  for (const event of events) {
    const prefix = event.label ? `${event.label} ` : '';
    out.push({ label: event.label ?? event.name.split('/').pop() ?? 'y', data: zip(event.x, event.y) });
    for (const [key, values] of Object.entries(event.extra)) {
      out.push({ label: prefix + key, data: zip(event.x, values) });
    }
  }
  return out;
}

/** `0.0123`, `12.3`, `1.23e+5`: three significant digits, compact. */
export function formatValue(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) {
    return v === null || v === undefined ? '–' : String(v);
  }
  if (v === 0) {
    return '0';
  }
  const abs = Math.abs(v);
  if (abs >= 1e5 || abs < 1e-3) {
    return v.toExponential(2);
  }
  return String(Number(v.toPrecision(3)));
}

/** `42s`, `3m 04s`, `2h 05m`, `3d 4h`. */
export function formatElapsed(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) {
    return `${s}s`;
  }
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (s < 3600) {
    return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  }
  if (s < 86400) {
    return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  }
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export interface RunTimes {
  started: number | null;
  ended: number | null;
}

/** Seconds a run has taken so far (`now` in the server's clock, Unix seconds). */
export function elapsed(run: RunTimes, now: number): number {
  if (!run.started) {
    return 0;
  }
  return Math.max(0, (run.ended ?? now) - run.started);
}

export interface RunState {
  status: string;
  alive?: boolean | null;
  stop_requested?: boolean;
}

/**
 * What the badge says: the status, except `stopping` for a running run asked to stop and `lost`
 * for a run marked running whose process is gone (it crashed without writing its status).
 */
export function badge(run: RunState): string {
  if (run.status === 'running') {
    if (run.alive === false) {
      return 'lost';
    }
    if (run.stop_requested) {
      return 'stopping';
    }
  }
  return run.status;
}

/**
 * Whether a table is a matrix (as many rows as columns, every cell a finite number), such as the
 * teacher–student agreement counts: only a matrix is shaded as a heat map. Shading a table whose
 * columns hold different quantities (parameters, FLOPs, milliseconds) would compare apples with pears.
 */
export function isMatrix(columns: unknown[], rows: unknown[][]): boolean {
  return (
    rows.length > 0 &&
    rows.length === columns.length &&
    rows.every(r => r.length === columns.length && r.every(c => typeof c === 'number' && Number.isFinite(c)))
  );
}

function modelText(m: { class?: string; params?: number }): string {
  const params = typeof m.params === 'number' ? `${m.params.toLocaleString('en-US')} params` : '';
  return [m.class ?? '?', params].filter(Boolean).join(' · ');
}

/** Rows `[label, text]` that say what a run trained: student, teacher(s), data and its splits. */
export function settingRows(setting: RunSetting | null | undefined): [string, string][] {
  if (!setting) {
    return [];
  }
  const rows: [string, string][] = [];
  if (setting.student) {
    rows.push(['student', modelText(setting.student)]);
  }
  const teachers = setting.teachers ?? [];
  teachers.forEach((t, i) => rows.push([teachers.length > 1 ? `teacher ${i}` : 'teacher', modelText(t)]));
  if (setting.data) {
    const d = setting.data;
    const sizes = d.sizes ? Object.entries(d.sizes).map(([k, v]) => `${k} ${v}`).join(' / ') : '';
    const batch = typeof d.batch_size === 'number' ? `batch ${d.batch_size}` : '';
    rows.push(['data', [d.class ?? '?', sizes, batch].filter(Boolean).join(' · ')]);
  }
  if (setting.error) {
    rows.push(['setting', `not recorded: ${setting.error}`]);
  }
  return rows;
}
