/**
 * One poller shared by the side panel and the status bar item, so the pool
 * service is asked once per interval however many views are open.
 *
 * It refreshes with a `Poll` (@lumino/polling): every `refreshSeconds` while
 * the tab is visible, every `hiddenRefreshSeconds` while it is hidden, and it
 * turns my new events into JupyterLab notifications (start, preemption,
 * reclaim warning, time limit), so they are seen outside the panel too.
 */
import { Notification } from '@jupyterlab/apputils';
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { IMe, IPool, IPoolEvent, IQueueEntry, ITeam, IWorkload, PoolApi, PoolError } from './api';
import { gpuCount } from './kit';

/** The panel's settings (schema/plugin.json). */
export interface IPoolSettings {
  refreshSeconds: number;
  hiddenRefreshSeconds: number;
  collapseAbove: number;
  notifications: boolean;
  finishedShown: number;
}

export const DEFAULT_SETTINGS: IPoolSettings = {
  refreshSeconds: 3,
  hiddenRefreshSeconds: 30,
  collapseAbove: 32,
  notifications: true,
  finishedShown: 5
};

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
  constructor(
    readonly api: PoolApi = new PoolApi(),
    readonly trans: TranslationBundle = nullTranslator.load('jupyterlab_gpupool')
  ) {
    this._poll = new Poll({
      auto: false,
      factory: () => this._load(),
      frequency: { interval: this.settings.refreshSeconds * 1000, backoff: true, max: 60_000 },
      name: 'jupyterlab-gpupool:refresh',
      standby: 'never'
    });
    document.addEventListener('visibilitychange', this._onVisibility);
  }

  settings: IPoolSettings = { ...DEFAULT_SETTINGS };
  me: IMe | null = null;
  pool: IPool | null = null;
  workloads: IWorkload[] = [];
  queue: IQueueEntry[] = [];
  teams: ITeam[] = [];
  /** My latest events, newest last. */
  events: IPoolEvent[] = [];
  /** The last refresh's failure, in plain words; null once a refresh works again. */
  error: string | null = null;
  refreshedAt: Date | null = null;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  start(): void {
    void this._poll.start();
  }

  /** New settings: the refresh interval changes at once. */
  configure(settings: Partial<IPoolSettings>): void {
    this.settings = { ...this.settings, ...settings };
    this._onVisibility();
    this._changed.emit();
  }

  dispose(): void {
    document.removeEventListener('visibilitychange', this._onVisibility);
    this._poll.dispose();
    Signal.clearData(this);
  }

  /** Refresh now (after an action), and keep the usual rhythm afterwards. */
  async refresh(): Promise<void> {
    await this._poll.refresh();
    await this._poll.tick;
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

  /** My teams, with usage against quota. */
  get myTeams(): ITeam[] {
    const mine = new Set(this.me?.teams ?? []);
    return this.teams.filter(t => mine.has(t.name));
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

  private _onVisibility = (): void => {
    const seconds = document.hidden ? this.settings.hiddenRefreshSeconds : this.settings.refreshSeconds;
    const interval = Math.max(1, seconds) * 1000;
    if (this._poll.frequency.interval !== interval) {
      this._poll.frequency = { ...this._poll.frequency, interval };
    }
  };

  private _noteEvents(all: IPoolEvent[], user: string): void {
    const first = this._lastEventId === null;
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
    // What happened before this page was opened is listed, not announced.
    if (!first && this.settings.notifications) {
      fresh.forEach(e => this._notify(e));
    }
    this.events = this.events.concat(fresh).slice(-EVENTS_KEPT);
  }

  /** One notification per event that asks for my attention. */
  private _notify(e: IPoolEvent): void {
    const trans = this.trans;
    const w = this.workloads.find(x => x.id === e.workload_id);
    const what = w?.name || e.workload_id || '';
    const options = { autoClose: 8000 as number | false, data: { kind: e.kind, workload_id: e.workload_id } };
    if (e.kind === 'started') {
      const gpus = typeof e.details?.gpus === 'number' ? gpuCount(e.details.gpus as number) : '';
      Notification.success(trans.__('%1 started with %2.', what, gpus || trans.__('its GPUs')), options);
    } else if (e.kind === 'preempting') {
      Notification.warning(trans.__('%1 is being preempted; save your work: %2', what, e.message), { ...options, autoClose: false });
    } else if (e.kind === 'preempted') {
      Notification.warning(trans.__('%1 was preempted and is back in the queue: %2', what, e.message), { ...options, autoClose: false });
    } else if (e.kind === 'warned') {
      Notification.warning(trans.__('Idle GPUs of %1 will be reclaimed unless you use them: %2', what, e.message), { ...options, autoClose: false });
    } else if (e.kind === 'reclaimed') {
      Notification.warning(trans.__('The idle GPUs of %1 went back to the pool: %2', what, e.message), { ...options, autoClose: false });
    } else if (e.kind.startsWith('time-limit') || e.kind === 'timed-out') {
      Notification.warning(trans.__('%1 and its time limit: %2', what, e.message), { ...options, autoClose: false });
    } else if (e.kind === 'failed') {
      Notification.error(trans.__('%1 failed: %2', what, e.message), options);
    } else if (e.kind === 'finished') {
      Notification.info(trans.__('%1 finished: %2', what, e.message), options);
    }
  }

  private async _load(): Promise<void> {
    try {
      const [me, pool, workloads, events, queue, teams] = await Promise.all([
        this.me ? Promise.resolve(this.me) : this.api.me(),
        this.api.pool(),
        this.api.workloads(),
        this.api.events(this._lastEventId),
        this.api.queue(),
        this.api.teams()
      ]);
      // Admins are answered with everyone's work: the panel is about mine.
      this.me = me;
      this.pool = pool;
      this.workloads = workloads.filter(w => w.user === me.user);
      this.queue = queue;
      this.teams = teams;
      this._noteEvents(events.events, me.user);
      this.error = null;
      this.refreshedAt = new Date();
    } catch (reason) {
      this.error = describe(reason);
      this._changed.emit();
      throw reason; // the Poll backs off while the pool cannot be reached
    }
    this._changed.emit();
  }

  private _changed = new Signal<this, void>(this);
  private _lastEventId: number | null = null;
  private _warnings = new Map<string, IPoolEvent>();
  private _poll: Poll;
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
