/**
 * Run events as the server sends them (one JSON object per line of `events.jsonl`), checked and
 * indexed by name. Pure TypeScript: no DOM, no JupyterLab, so it is unit-tested in Node.
 */

export type EventKind = 'scalar' | 'histogram' | 'points' | 'image' | 'table';

interface EventBase {
  step: number;
  epoch: number;
  time: number;
  name: string;
}

export interface ScalarEvent extends EventBase {
  kind: 'scalar';
  /** NaN where the run logged NaN or ±inf (the server sends those as `null`). */
  value: number;
}

export interface HistogramEvent extends EventBase {
  kind: 'histogram';
  edges: number[];
  counts: number[];
}

export interface PointsEvent extends EventBase {
  kind: 'points';
  x: number[];
  y: number[];
  label?: string;
  /** Other numeric arrays as long as `x` (e.g. `teacher`, `student`): more series of the same points. */
  extra: Record<string, number[]>;
}

export interface ImageEvent extends EventBase {
  kind: 'image';
  /** Relative to the run folder, under `media/`. */
  path: string;
}

export interface TableEvent extends EventBase {
  kind: 'table';
  columns: string[];
  rows: unknown[][];
}

export type RunEvent = ScalarEvent | HistogramEvent | PointsEvent | ImageEvent | TableEvent;

const BASE_KEYS = new Set(['step', 'epoch', 'time', 'kind', 'name', 'x', 'y', 'label']);

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : NaN;
}

function numbers(v: unknown): number[] | null {
  return Array.isArray(v) ? v.map(num) : null;
}

/** The event `raw` describes, or `null` if it is not a well-formed event of a known kind. */
export function normalizeEvent(raw: unknown): RunEvent | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return null;
  }
  const r = raw as Record<string, unknown>;
  if (typeof r.name !== 'string' || typeof r.kind !== 'string') {
    return null;
  }
  const base: EventBase = {
    step: Number.isFinite(r.step) ? (r.step as number) : 0,
    epoch: Number.isFinite(r.epoch) ? (r.epoch as number) : 0,
    time: Number.isFinite(r.time) ? (r.time as number) : 0,
    name: r.name
  };
  switch (r.kind) {
    case 'scalar':
      return { ...base, kind: 'scalar', value: num(r.value) };
    case 'histogram': {
      const counts = numbers(r.counts);
      if (!counts) {
        return null;
      }
      const edges = numbers(r.edges) ?? counts.map((_, i) => i).concat(counts.length);
      return { ...base, kind: 'histogram', edges, counts };
    }
    case 'points': {
      const x = numbers(r.x);
      const y = numbers(r.y);
      if (!x || !y || x.length !== y.length) {
        return null;
      }
      const extra: Record<string, number[]> = {};
      for (const [key, value] of Object.entries(r)) {
        const series = BASE_KEYS.has(key) ? null : numbers(value);
        if (series && series.length === x.length && series.some(Number.isFinite)) {
          extra[key] = series;
        }
      }
      const label = typeof r.label === 'string' ? r.label : undefined;
      return { ...base, kind: 'points', x, y, label, extra };
    }
    case 'image':
      return typeof r.path === 'string' ? { ...base, kind: 'image', path: r.path } : null;
    case 'table': {
      if (!Array.isArray(r.columns) || !Array.isArray(r.rows)) {
        return null;
      }
      const rows = r.rows.filter(Array.isArray) as unknown[][];
      return { ...base, kind: 'table', columns: r.columns.map(String), rows };
    }
    default:
      return null;
  }
}

export interface ScalarSeries {
  steps: number[];
  values: number[];
}

/**
 * Every event of one run, indexed for drawing: the whole history of each scalar, and the latest
 * histogram, points (all labels of the latest step), image and table of each name.
 */
export class RunEventStore {
  readonly scalars = new Map<string, ScalarSeries>();
  readonly histograms = new Map<string, HistogramEvent>();
  readonly points = new Map<string, PointsEvent[]>();
  readonly images = new Map<string, ImageEvent>();
  readonly tables = new Map<string, TableEvent>();
  /** Events accepted so far. */
  count = 0;
  /** Lines that were not events (skipped). */
  skipped = 0;

  /** Add raw events; returns how many were accepted. */
  add(raw: unknown[]): number {
    let accepted = 0;
    for (const item of raw) {
      const event = normalizeEvent(item);
      if (!event) {
        this.skipped += 1;
        continue;
      }
      this.put(event);
      accepted += 1;
    }
    this.count += accepted;
    return accepted;
  }

  clear(): void {
    for (const map of [this.scalars, this.histograms, this.points, this.images, this.tables]) {
      map.clear();
    }
    this.count = 0;
    this.skipped = 0;
  }

  private put(event: RunEvent): void {
    switch (event.kind) {
      case 'scalar': {
        let series = this.scalars.get(event.name);
        if (!series) {
          series = { steps: [], values: [] };
          this.scalars.set(event.name, series);
        }
        series.steps.push(event.step);
        series.values.push(event.value);
        break;
      }
      case 'histogram':
        this.histograms.set(event.name, event);
        break;
      case 'points': {
        const current = this.points.get(event.name);
        if (!current || current[0].step !== event.step) {
          this.points.set(event.name, [event]);
        } else {
          this.points.set(event.name, [...current.filter(e => e.label !== event.label), event]);
        }
        break;
      }
      case 'image':
        this.images.set(event.name, event);
        break;
      case 'table':
        this.tables.set(event.name, event);
        break;
    }
  }

  /** The last value of scalar `name`, or `undefined`. */
  last(name: string): number | undefined {
    const series = this.scalars.get(name);
    return series && series.values.length ? series.values[series.values.length - 1] : undefined;
  }
}
