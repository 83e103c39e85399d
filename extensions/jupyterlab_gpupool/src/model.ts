/**
 * One poller shared by the side panel and the status bar item, so the pool
 * service is asked once per interval however many views are open.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { IMe, IPool, IPoolEvent, IWorkload, PoolApi, PoolError } from './api';

/** How often the views refresh themselves without reloading the page. */
export const REFRESH_MS = 3000;

/** Event kinds that start and end a reclaim warning (written by the service's idle reclaim). */
const WARNED = 'warned';
/** A preemption with notice (written by the service's preemption): the GPUs go at details.preempt_at. */
const PREEMPTING = 'preempting';
const WARNING_ENDS = new Set(['warning-withdrawn', 'reclaimed', 'preempted', 'finished', 'failed', 'cancelled']);
/** How many of my latest events the panel keeps. */
const EVENTS_KEPT = 8;

export interface IReclaimWarning {
  workload: IWorkload;
  /** Seconds until the GPUs go back; null when that waits until someone needs them. */
  secondsLeft: number | null;
  message: string;
  /** 'reclaim': idle GPUs; 'preemption': another team reclaims its quota. */
  kind: 'reclaim' | 'preemption';
}

export class PoolModel {
  constructor(readonly api: PoolApi = new PoolApi()) {}

  me: IMe | null = null;
  pool: IPool | null = null;
  workloads: IWorkload[] = [];
  /** My latest events, newest last. */
  events: IPoolEvent[] = [];
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

  /** My running sessions the pool has warned about: their idle GPUs will be reclaimed unless used. */
  get reclaimWarnings(): IReclaimWarning[] {
    const warnings: IReclaimWarning[] = [];
    for (const [id, event] of this._warnings) {
      const workload = this.workloads.find(w => w.id === id);
      if (!workload || (workload.state !== 'running' && workload.state !== 'stopping')) {
        continue;
      }
      const preemption = event.kind === PREEMPTING;
      const at = preemption ? event.details?.preempt_at : event.details?.reclaim_at;
      const secondsLeft = typeof at === 'number' ? Math.max(0, at - Date.now() / 1000) : null;
      warnings.push({ workload, secondsLeft, message: event.message, kind: preemption ? 'preemption' : 'reclaim' });
    }
    return warnings;
  }

  private _noteEvents(all: IPoolEvent[], user: string): void {
    for (const e of all) {
      this._lastEventId = Math.max(this._lastEventId ?? 0, e.id);
    }
    const fresh = all.filter(e => e.user === user);
    for (const e of fresh) {
      if (!e.workload_id) {
        continue;
      }
      if (e.kind === WARNED || e.kind === PREEMPTING) {
        this._warnings.set(e.workload_id, e);
      } else if (WARNING_ENDS.has(e.kind)) {
        this._warnings.delete(e.workload_id);
      }
    }
    this.events = this.events.concat(fresh).slice(-EVENTS_KEPT);
  }

  private async _load(): Promise<void> {
    try {
      const [me, pool, workloads, events] = await Promise.all([
        this.me ? Promise.resolve(this.me) : this.api.me(),
        this.api.pool(),
        this.api.workloads(),
        this.api.events(this._lastEventId)
      ]);
      // Admins are answered with everyone's work: the panel is about mine.
      this._noteEvents(events.events, me.user);
      this.me = me;
      this.pool = pool;
      this.workloads = workloads.filter(w => w.user === me.user);
      this.error = null;
      this.refreshedAt = new Date();
    } catch (reason) {
      this.error = describe(reason);
    }
    this._changed.emit();
  }

  private _changed = new Signal<this, void>(this);
  private _lastEventId: number | null = null;
  private _warnings = new Map<string, IPoolEvent>();
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
