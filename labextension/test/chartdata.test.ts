import { describe, expect, it } from 'vitest';

import {
  badge,
  decimate,
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
} from '../src/chartdata';
import { HistogramEvent, PointsEvent, RunEventStore } from '../src/events';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('decimate', () => {
  it('passes short series through, NaN as gaps', () => {
    expect(decimate({ steps: [1, 2, 3], values: [0.5, NaN, 0.25] })).toEqual([
      { x: 1, y: 0.5 },
      { x: 2, y: null },
      { x: 3, y: 0.25 }
    ]);
  });

  it('bins long series into at most maxPoints means, like the Python views', () => {
    const steps = range(1000);
    const values = steps.map(s => s * 2);
    const out = decimate({ steps, values }, 100);
    expect(out).toHaveLength(100);
    expect(out[0]).toEqual({ x: 4.5, y: 9 });
    expect(out[99]).toEqual({ x: 994.5, y: 1989 });
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(out.map(p => p.y as number))).toBeCloseTo(mean(values), 6);
  });

  it('ignores NaN inside a bin and gives null for an all-NaN bin', () => {
    const out = decimate({ steps: range(6), values: [1, NaN, NaN, NaN, 3, 5] }, 3);
    expect(out.map(p => p.y)).toEqual([1, null, 4]);
  });
});

describe('groupScalars', () => {
  it('groups by prefix with train, val, test first', () => {
    const groups = groupScalars(['lr', 'val/kl', 'train/loss', 'val/acc', 'gap/x', 'train/kd', 'test/acc']);
    expect(groups.map(g => [g.key, g.names])).toEqual([
      ['train', ['train/loss', 'train/kd']],
      ['val', ['val/kl', 'val/acc']],
      ['test', ['test/acc']],
      ['lr', ['lr']],
      ['gap', ['gap/x']]
    ]);
    expect(groups[0].title).toBe('training (per step)');
    expect(groups[3].title).toBe('lr');
  });

  it('labels lines by the part after the prefix', () => {
    expect(shortName('train/loss', 'train')).toBe('loss');
    expect(shortName('lr', 'lr')).toBe('lr');
    const store = new RunEventStore();
    store.add([
      { step: 1, kind: 'scalar', name: 'train/loss', value: 1 },
      { step: 1, kind: 'scalar', name: 'train/kd', value: 2 }
    ]);
    expect(groupSeries(store, groupScalars(store.scalars.keys())[0])).toEqual([
      { label: 'loss', data: [{ x: 1, y: 1 }] },
      { label: 'kd', data: [{ x: 1, y: 2 }] }
    ]);
  });
});

describe('histogramBars', () => {
  const hist = (edges: number[], counts: number[]): HistogramEvent => ({ step: 0, epoch: 0, time: 0, kind: 'histogram', name: 'h', edges, counts });

  it('labels bars with bin centres', () => {
    expect(histogramBars(hist([0, 1, 2, 4], [3, 0, 5]))).toEqual({ labels: ['0.5', '1.5', '3'], counts: [3, 0, 5] });
  });

  it('survives short or non-finite edges and counts', () => {
    expect(histogramBars(hist([0, NaN], [1, NaN]))).toEqual({ labels: ['0', '1'], counts: [1, 0] });
  });
});

describe('pointsSeries', () => {
  const pts = (label: string | undefined, extra: Record<string, number[]> = {}): PointsEvent => ({
    step: 0,
    epoch: 0,
    time: 0,
    kind: 'points',
    name: 'val/per_class_gap',
    x: [0, 1, NaN],
    y: [1, NaN, 3],
    label,
    extra
  });

  it('gives y and each extra array as series, dropping non-finite x', () => {
    expect(pointsSeries([pts(undefined, { teacher: [5, 6, 7] })])).toEqual([
      { label: 'per_class_gap', data: [{ x: 0, y: 1 }, { x: 1, y: null }] },
      { label: 'teacher', data: [{ x: 0, y: 5 }, { x: 1, y: 6 }] }
    ]);
  });

  it('names series by label', () => {
    expect(pointsSeries([pts('student', { acc: [1, 1, 1] }), pts('teacher')]).map(s => s.label)).toEqual([
      'student',
      'student acc',
      'teacher'
    ]);
  });
});

describe('formatting', () => {
  it('formats values compactly', () => {
    expect([0, 1, 0.123456, 12.345, 123456, 0.0001234, -2.5, NaN, null, undefined].map(formatValue)).toEqual([
      '0',
      '1',
      '0.123',
      '12.3',
      '1.23e+5',
      '1.23e-4',
      '-2.5',
      'NaN',
      '–',
      '–'
    ]);
  });

  it('formats elapsed times', () => {
    expect([0, 42.9, 60, 184, 3600, 7500, 90061, -5].map(formatElapsed)).toEqual([
      '0s',
      '42s',
      '1m 00s',
      '3m 04s',
      '1h 00m',
      '2h 05m',
      '1d 1h',
      '0s'
    ]);
  });

  it('measures elapsed time to the end, or to now while running', () => {
    expect(elapsed({ started: 100, ended: 160 }, 1000)).toBe(60);
    expect(elapsed({ started: 100, ended: null }, 130)).toBe(30);
    expect(elapsed({ started: null, ended: null }, 130)).toBe(0);
  });

  it('badges stopping and lost runs', () => {
    expect(badge({ status: 'running' })).toBe('running');
    expect(badge({ status: 'running', stop_requested: true })).toBe('stopping');
    expect(badge({ status: 'running', alive: false, stop_requested: true })).toBe('lost');
    expect(badge({ status: 'running', alive: null })).toBe('running');
    expect(badge({ status: 'stopped', stop_requested: true })).toBe('stopped');
  });
});

describe('isMatrix', () => {
  it('shades square all-number tables only', () => {
    expect(isMatrix([0, 1], [[3, 1], [0, 4]])).toBe(true);
    expect(isMatrix(['model', 'params'], [['teacher', 50826], ['student', 1210]])).toBe(false);
    expect(isMatrix(['a', 'b'], [[1, 2]])).toBe(false);
    expect(isMatrix(['a', 'b'], [[1, NaN], [2, 3]])).toBe(false);
    expect(isMatrix([], [])).toBe(false);
  });
});

describe('settingRows', () => {
  it('says what a run trained, and nothing for older runs', () => {
    expect(
      settingRows({
        student: { class: 'MLP', params: 2410 },
        teachers: [{ class: 'MLP', params: 50826 }],
        data: { class: 'Digits', batch_size: 64, sizes: { train: 100, val: 359, test: 360 } }
      })
    ).toEqual([
      ['student', 'MLP · 2,410 params'],
      ['teacher', 'MLP · 50,826 params'],
      ['data', 'Digits · train 100 / val 359 / test 360 · batch 64']
    ]);
    expect(settingRows({ teachers: [{ class: 'A' }, { class: 'B', params: 3 }] })).toEqual([
      ['teacher 0', 'A'],
      ['teacher 1', 'B · 3 params']
    ]);
    expect(settingRows(undefined)).toEqual([]);
    expect(settingRows({ error: 'KeyError: x' })).toEqual([['setting', 'not recorded: KeyError: x']]);
  });
});
