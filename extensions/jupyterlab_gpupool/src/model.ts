/**
 * One poller shared by the side panel and the status bar item, so the pool
 * service is asked once per interval however many views are open.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { IMe, IPool, IWorkload, PoolApi, PoolError } from './api';

/** How often the views refresh themselves without reloading the page. */
export const REFRESH_MS = 3000;

/** Warn this long before an idle session's GPUs are reclaimed. */
export const RECLAIM_WARNING_SECONDS = 10 * 60;

export interface IReclaimWarning {
  workload: IWorkload;
  secondsLeft: number;
}

export class PoolModel {
  constructor(readonly api: PoolApi = new PoolApi()) {}

  me: IMe | null = null;
  pool: IPool | null = null;
  workloads: IWorkload[] = [];
  /** The last refresh's failure, in plain words; null once a refresh works again. */
  error: string | null = null;
  refreshedAt: Date | null = null;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  start(): void {
    if (this._timer === null) {
      void this.refresh();
      this._timer = window.setInterval(() => void this.refresh(), REFRESH_MS);
    }
  }

  dispose(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
    Signal.clearData(this);
  }

  async refresh(): Promise<void> {
    if (this._inFlight) {
      return this._inFlight;
    }
    this._inFlight = this._load().finally(() => {
      this._inFlight = null;
    });
    return this._inFlight;
  }

  /** The workload that this JupyterLab server itself runs as, if the pool knows it. */
  get mySession(): IWorkload | null {
    const id = this.me?.session_workload_id;
    if (id) {
      return this.workloads.find(w => w.id === id) ?? null;
    }
    return null;
  }

  /** GPUs held by a workload, with their latest readings from the pool. */
  gpusOf(workload: IWorkload): IPool['nodes'][number]['gpus'] {
    const shares = workload.allocation?.shares ?? [];
    const all = (this.pool?.nodes ?? []).flatMap(n => n.gpus);
    return all.filter(g => shares.some(s => s.node === g.node && s.gpu_uuid === g.uuid));
  }

  /** My running sessions whose GPUs will be reclaimed soon unless they are used. */
  get reclaimWarnings(): IReclaimWarning[] {
    const after = this.pool?.reclaim_idle_seconds;
    const warnings: IReclaimWarning[] = [];
    for (const w of this.workloads) {
      if (w.kind !== 'session' || w.state !== 'running' || w.idle_seconds === null || w.idle_seconds === undefined) {
        continue;
      }
      let secondsLeft: number | null = null;
      if (w.reclaim_at) {
        secondsLeft = (Date.parse(w.reclaim_at) - Date.now()) / 1000;
      } else if (after) {
        secondsLeft = after - w.idle_seconds;
      }
      if (secondsLeft !== null && secondsLeft <= RECLAIM_WARNING_SECONDS) {
        warnings.push({ workload: w, secondsLeft: Math.max(0, secondsLeft) });
      }
    }
    return warnings;
  }

  private async _load(): Promise<void> {
    try {
      const [me, pool, workloads] = await Promise.all([
        this.me ? Promise.resolve(this.me) : this.api.me(),
        this.api.pool(),
        this.api.workloads()
      ]);
      this.me = me;
      this.pool = pool;
      this.workloads = workloads;
      this.error = null;
      this.refreshedAt = new Date();
    } catch (reason) {
      this.error = describe(reason);
    }
    this._changed.emit();
  }

  private _changed = new Signal<this, void>(this);
  private _timer: number | null = null;
  private _inFlight: Promise<void> | null = null;
}

export function describe(reason: unknown): string {
  if (reason instanceof PoolError) {
    return reason.message;
  }
  if (reason instanceof Error) {
    return reason.message;
  }
  return String(reason);
}
