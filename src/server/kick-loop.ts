/**
 * The loop the server's background services share (alerting, incidents): one pass at a time, run again at once when
 * kicked (a kick during a pass runs another right after it), otherwise after the delay the service asks for.
 */
export interface KickLoopOptions {
  /** One pass. A rejection is handed to `onError`; the loop goes on. */
  readonly pass: () => Promise<void>;
  /** The delay before the next pass when nothing kicks the loop sooner (read after each pass). */
  readonly nextDelayMs: () => number;
  readonly onError: (e: unknown) => void;
}

export class KickLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;

  constructor(private readonly o: KickLoopOptions) {}

  /** Starts the loop with a pass now. */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops scheduling and waits for a pass under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Runs a pass now rather than after the delay. */
  kick(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.o
        .pass()
        .catch((e: unknown) => this.o.onError(e))
        .finally(() => {
          this.running = undefined;
          const again = this.again;
          this.again = false;
          this.schedule(again ? 0 : this.o.nextDelayMs());
        });
    }, ms);
    this.timer.unref?.();
  }
}
