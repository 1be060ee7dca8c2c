/**
 * A widget that polls the server while somebody looks at it, with a one-second clock for its
 * elapsed-time labels: the base of the runs sidebar and the run viewer. Polling and the clock stop
 * while the widget is hidden or the browser tab is in the background, and start again, with an
 * immediate poll, when it is seen.
 */
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { BackoffPoller, PollerOptions } from './poller';

export abstract class LiveWidget extends Widget {
  readonly poller: BackoffPoller;
  private clock: ReturnType<typeof setInterval> | null = null;
  private readonly onVisibility = (): void => {
    if (document.visibilityState === 'visible' && this.isVisible) {
      void this.poller.wake();
    } else {
      this.poller.pause();
    }
  };

  constructor(pollerOptions: PollerOptions) {
    super();
    this.poller = new BackoffPoller(
      () => this.refresh(),
      () => this.isVisible && document.visibilityState !== 'hidden',
      pollerOptions
    );
  }

  /** One poll: fetch and redraw; resolves whether anything changed (the poller backs off if not). */
  abstract refresh(): Promise<boolean>;

  /** Called every second while the widget is seen. */
  protected abstract onClock(): void;

  private startClock(): void {
    if (this.clock === null) {
      this.clock = setInterval(() => this.onClock(), 1000);
    }
  }

  private stopClock(): void {
    if (this.clock !== null) {
      clearInterval(this.clock);
      this.clock = null;
    }
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    document.addEventListener('visibilitychange', this.onVisibility);
    if (this.isVisible) {
      this.startClock();
      void this.poller.wake();
    }
  }

  protected onBeforeDetach(msg: Message): void {
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.poller.pause();
    this.stopClock();
    super.onBeforeDetach(msg);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.startClock();
    void this.poller.wake();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.poller.pause();
    this.stopClock();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.poller.dispose();
    this.stopClock();
    super.dispose();
  }
}
