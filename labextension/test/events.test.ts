import { describe, expect, it } from 'vitest';

import { RunEventStore, normalizeEvent } from '../src/events';

const base = { step: 3, epoch: 1, time: 1700000000.5 };

describe('normalizeEvent', () => {
  it('reads every kind of the run-folder contract', () => {
    expect(normalizeEvent({ ...base, kind: 'scalar', name: 'train/loss', value: 0.5 })).toEqual({
      ...base,
      kind: 'scalar',
      name: 'train/loss',
      value: 0.5
    });
    expect(normalizeEvent({ ...base, kind: 'histogram', name: 'h', edges: [0, 1, 2], counts: [4, 5] })).toMatchObject({
      kind: 'histogram',
      edges: [0, 1, 2],
      counts: [4, 5]
    });
    expect(normalizeEvent({ ...base, kind: 'image', name: 'samples', path: 'media/samples-00000003.png' })).toMatchObject({
      kind: 'image',
      path: 'media/samples-00000003.png'
    });
    expect(normalizeEvent({ ...base, kind: 'table', name: 't', columns: ['a', 2], rows: [[1, 'x'], 'junk'] })).toMatchObject({
      kind: 'table',
      columns: ['a', '2'],
      rows: [[1, 'x']]
    });
  });

  it('keeps extra numeric arrays of points events as series', () => {
    const event = normalizeEvent({
      ...base,
      kind: 'points',
      name: 'val/per_class_gap',
      x: [0, 1, 2],
      y: [0.1, 0.2, 0.3],
      teacher: [1, 1, 0.9],
      student: [0.9, 0.8, 0.6],
      short: [1],
      words: ['a', 'b', 'c'],
      label: 'gap'
    });
    expect(event).toMatchObject({ kind: 'points', label: 'gap', extra: { teacher: [1, 1, 0.9], student: [0.9, 0.8, 0.6] } });
    expect(Object.keys((event as { extra: object }).extra)).toEqual(['teacher', 'student']);
  });

  it('turns null (NaN or inf on disk) into NaN and fills missing step, epoch and time', () => {
    expect(normalizeEvent({ kind: 'scalar', name: 'train/loss', value: null })).toEqual({
      step: 0,
      epoch: 0,
      time: 0,
      kind: 'scalar',
      name: 'train/loss',
      value: NaN
    });
    expect(normalizeEvent({ kind: 'histogram', name: 'h', counts: [1, 2] })).toMatchObject({ edges: [0, 1, 2] });
  });

  it('rejects what is not an event', () => {
    for (const raw of [
      null,
      42,
      'text',
      [1, 2],
      { kind: 'scalar' },
      { name: 'x' },
      { kind: 'video', name: 'x' },
      { kind: 'histogram', name: 'h' },
      { kind: 'points', name: 'p', x: [1, 2], y: [1] },
      { kind: 'image', name: 'i' },
      { kind: 'table', name: 't', columns: ['a'] }
    ]) {
      expect(normalizeEvent(raw)).toBeNull();
    }
  });
});

describe('RunEventStore', () => {
  it('keeps each scalar history and the latest of the other kinds', () => {
    const store = new RunEventStore();
    const accepted = store.add([
      { ...base, step: 1, kind: 'scalar', name: 'train/loss', value: 2 },
      { ...base, step: 2, kind: 'scalar', name: 'train/loss', value: 1 },
      { ...base, step: 2, kind: 'scalar', name: 'val/acc', value: 0.5 },
      { ...base, step: 1, kind: 'histogram', name: 'h', edges: [0, 1], counts: [3] },
      { ...base, step: 2, kind: 'histogram', name: 'h', edges: [0, 1], counts: [7] },
      { ...base, step: 2, kind: 'image', name: 'img', path: 'media/a.png' },
      { ...base, step: 2, kind: 'table', name: 'tab', columns: ['c'], rows: [[1]] },
      'garbage',
      { kind: 'nope', name: 'x' }
    ]);
    expect(accepted).toBe(7);
    expect(store.count).toBe(7);
    expect(store.skipped).toBe(2);
    expect(store.scalars.get('train/loss')).toEqual({ steps: [1, 2], values: [2, 1] });
    expect([...store.scalars.keys()]).toEqual(['train/loss', 'val/acc']);
    expect(store.last('train/loss')).toBe(1);
    expect(store.last('missing')).toBeUndefined();
    expect(store.histograms.get('h')?.counts).toEqual([7]);
    expect(store.images.get('img')?.path).toBe('media/a.png');
    expect(store.tables.get('tab')?.rows).toEqual([[1]]);
  });

  it('keeps all labels of the latest step of a points name', () => {
    const store = new RunEventStore();
    const points = (step: number, label: string, y: number) => ({ ...base, step, kind: 'points', name: 'p', label, x: [0], y: [y] });
    store.add([points(1, 'teacher', 1), points(1, 'student', 2)]);
    expect(store.points.get('p')?.map(e => e.label)).toEqual(['teacher', 'student']);
    store.add([points(1, 'student', 3)]);
    expect(store.points.get('p')?.map(e => [e.label, e.y[0]])).toEqual([
      ['teacher', 1],
      ['student', 3]
    ]);
    store.add([points(2, 'teacher', 5)]);
    expect(store.points.get('p')?.map(e => [e.label, e.step])).toEqual([['teacher', 2]]);
  });

  it('clears', () => {
    const store = new RunEventStore();
    store.add([{ ...base, kind: 'scalar', name: 'a', value: 1 }, 'x']);
    store.clear();
    expect(store.count + store.skipped + store.scalars.size).toBe(0);
  });
});
