/**
 * Polling with back-off that sleeps while nobody looks.
 *
 * Each tick resolves `true` when it saw something new: the next tick then comes after
 * `minInterval`. A tick that saw nothing new multiplies the interval by `factor` up to
 * `maxInterval`; a failed tick does the same up to `errorInterval`. While `isActive()` is false
 * (the panel is hidden, the browser tab is in the background) no tick is scheduled at all;
 * `wake()` (called when the panel is shown again, or on a manual refresh) ticks at once.
 */

export interface PollerOptions {
  minInterval?: number;
  maxInterval?: number;
  errorInterval?: number;
  factor?: number;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: handle => clearTimeout(handle as ReturnType<typeof setTimeout>)
};

export class BackoffPoller {
  readonly minInterval: number;
  readonly maxInterval: number;
  readonly errorInterval: number;
  readonly factor: number;
  /** Delay before the next tick. */
  interval: number;
  /** Consecutive failed ticks. */
  failures = 0;
  /** The last error a tick threw (cleared by a tick that succeeds). */
  lastError: unknown = null;
  private handle: unknown = null;
  private ticking = false;
  private again = false;
  private disposed = false;

  constructor(
    private readonly tick: () => Promise<boolean>,
    private readonly isActive: () => boolean = () => true,
    options: PollerOptions = {},
    private readonly timers: Timers = defaultTimers
  ) {
    this.minInterval = options.minInterval ?? 1000;
    this.maxInterval = options.maxInterval ?? 10000;
    this.errorInterval = options.errorInterval ?? 30000;
    this.factor = options.factor ?? 2;
    this.interval = this.minInterval;
  }

  /** Whether a tick is scheduled. */
  get scheduled(): boolean {
    return this.handle !== null;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Tick now (if active) with the interval back at its minimum. */
  wake(): Promise<void> {
    this.interval = this.minInterval;
    return this.run();
  }

  /** Cancel the scheduled tick; the poller stays asleep until `wake()`. */
  pause(): void {
    this.cancel();
  }

  dispose(): void {
    this.disposed = true;
    this.cancel();
  }

  private cancel(): void {
    if (this.handle !== null) {
      this.timers.clearTimeout(this.handle);
      this.handle = null;
    }
  }

  private async run(): Promise<void> {
    this.cancel();
    if (this.disposed || !this.isActive()) {
      return;
    }
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    try {
      const changed = await this.tick();
      this.failures = 0;
      this.lastError = null;
      this.interval = changed ? this.minInterval : Math.min(this.interval * this.factor, this.maxInterval);
    } catch (error) {
      this.failures += 1;
      this.lastError = error;
      this.interval = Math.min(Math.max(this.interval, this.minInterval) * this.factor, this.errorInterval);
    } finally {
      this.ticking = false;
    }
    if (this.again) {
      this.again = false;
      this.interval = this.minInterval;
      return this.run();
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.disposed || !this.isActive()) {
      return;
    }
    this.handle = this.timers.setTimeout(() => {
      this.handle = null;
      void this.run();
    }, this.interval);
  }
}
