import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { BackoffPoller } from '../src/poller';

describe('BackoffPoller', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const options = { minInterval: 100, maxInterval: 800, errorInterval: 1000, factor: 2 };

  it('backs off while nothing changes and resets when something does', async () => {
    const answers = [true, false, false, false, false, false, true];
    const intervals: number[] = [];
    const poller = new BackoffPoller(async () => answers.shift() ?? false, () => true, options);
    await poller.wake();
    intervals.push(poller.interval);
    for (let i = 0; i < 6; i++) {
      await vi.advanceTimersByTimeAsync(poller.interval);
      intervals.push(poller.interval);
    }
    expect(intervals).toEqual([100, 200, 400, 800, 800, 800, 100]);
    poller.dispose();
  });

  it('backs off further on errors and remembers the error', async () => {
    let fail = true;
    const poller = new BackoffPoller(
      async () => {
        if (fail) {
          throw new Error('server down');
        }
        return true;
      },
      () => true,
      options
    );
    await poller.wake();
    expect([poller.interval, poller.failures]).toEqual([200, 1]);
    await vi.advanceTimersByTimeAsync(200);
    await vi.advanceTimersByTimeAsync(400);
    await vi.advanceTimersByTimeAsync(800);
    expect([poller.interval, poller.failures]).toEqual([1000, 4]);
    expect((poller.lastError as Error).message).toBe('server down');
    fail = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect([poller.interval, poller.failures, poller.lastError]).toEqual([100, 0, null]);
    poller.dispose();
  });

  it('does not poll while inactive and ticks at once on wake', async () => {
    let active = true;
    const tick = vi.fn(async () => false);
    const poller = new BackoffPoller(tick, () => active, options);
    await poller.wake();
    expect(tick).toHaveBeenCalledTimes(1);
    active = false;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(tick).toHaveBeenCalledTimes(1);
    expect(poller.scheduled).toBe(false);
    active = true;
    await poller.wake();
    expect(tick).toHaveBeenCalledTimes(2);
    expect(poller.interval).toBe(200);
    poller.pause();
    expect(poller.scheduled).toBe(false);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(tick).toHaveBeenCalledTimes(2);
    poller.dispose();
  });

  it('runs one tick at a time and ticks again when woken during a tick', async () => {
    let release: () => void = () => undefined;
    const tick = vi.fn(() => new Promise<boolean>(resolve => (release = () => resolve(true))));
    const poller = new BackoffPoller(tick, () => true, options);
    const first = poller.wake();
    void poller.wake();
    expect(tick).toHaveBeenCalledTimes(1);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(tick).toHaveBeenCalledTimes(2);
    release();
    await first;
    poller.dispose();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(tick).toHaveBeenCalledTimes(2);
    expect(poller.isDisposed).toBe(true);
  });
});
