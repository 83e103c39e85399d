/**
 * Talking to the pool service through this server's `gpupool` server extension.
 *
 * The browser never holds a pool-service token: the server extension forwards
 * each call with the single-user server's own JupyterHub token, so the pool
 * service sees the user who owns this server.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export * from './kit/types';
import { IJobRequest, IMe, IPool, IPoolEvent, IQueueEntry, ITeam, IWorkload } from './kit/types';

/** An error the pool service (or the way to it) reported, worded for a person. */
export class PoolError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
    this.name = 'PoolError';
  }
}

/**
 * Turn any failed response into one sentence a person can act on.
 * The service's errors are `{"error": "..."}`; Jupyter's own are `{"message": "..."}`.
 */
async function errorFrom(response: Response): Promise<PoolError> {
  let text = '';
  try {
    text = await response.text();
    const body = JSON.parse(text);
    const said = body.error || body.message || body.reason;
    if (said) {
      return new PoolError(String(said), response.status);
    }
  } catch {
    // not JSON: fall through and describe the status instead
  }
  const hint =
    response.status === 401 || response.status === 403
      ? 'the GPU pool refused this request (not allowed)'
      : response.status === 404
        ? 'the GPU pool could not find what was asked for'
        : response.status >= 500
          ? 'the GPU pool service is not answering properly'
          : 'the GPU pool rejected the request';
  return new PoolError(`${hint} (HTTP ${response.status})${text ? ': ' + text.slice(0, 200) : ''}`, response.status);
}

export class PoolApi {
  constructor(private readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  private async call<T>(path: string, init: RequestInit = {}): Promise<T> {
    const url = URLExt.join(this.settings.baseUrl, 'gpupool', 'api', path);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (reason) {
      throw new PoolError(`Cannot reach this JupyterLab server: ${(reason as Error).message ?? reason}`, 0);
    }
    if (!response.ok) {
      throw await errorFrom(response);
    }
    if (response.status === 204) {
      return undefined as unknown as T;
    }
    return (await response.json()) as T;
  }

  me(): Promise<IMe> {
    return this.call<IMe>('me');
  }

  pool(): Promise<IPool> {
    return this.call<IPool>('pool');
  }

  async workloads(): Promise<IWorkload[]> {
    const body = await this.call<{ workloads: IWorkload[] } | IWorkload[]>('workloads');
    return Array.isArray(body) ? body : body.workloads;
  }

  submit(job: IJobRequest): Promise<IWorkload> {
    // One key per submission: a retry (of this server or of the pool client) returns the same job.
    const key =
      typeof crypto !== 'undefined' && 'randomUUID' in crypto
        ? crypto.randomUUID()
        : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    return this.call<IWorkload>('workloads', {
      method: 'POST',
      headers: { 'Idempotency-Key': key },
      body: JSON.stringify({ kind: 'job', ...job })
    });
  }

  /** My events (all events for admins) with an id above ``since``. */
  async events(since: number | null): Promise<{ events: IPoolEvent[]; last_id?: number }> {
    const body = await this.call<{ events: IPoolEvent[]; last_id?: number } | IPoolEvent[]>(
      since === null ? 'events' : `events?since=${since}`
    );
    return Array.isArray(body) ? { events: body } : body;
  }

  /** The whole queue, in start order (other users' entries without their details). */
  async queue(): Promise<IQueueEntry[]> {
    const body = await this.call<{ queue: IQueueEntry[] } | IQueueEntry[]>('queue');
    return Array.isArray(body) ? body : body.queue;
  }

  async teams(): Promise<ITeam[]> {
    const body = await this.call<{ teams: ITeam[] } | ITeam[]>('teams');
    return Array.isArray(body) ? body : body.teams;
  }

  /** A batch job's output from byte ``offset`` on. */
  logs(id: string, offset = 0): Promise<{ text: string; offset: number }> {
    return this.call(`workloads/${encodeURIComponent(id)}/logs?offset=${offset}`);
  }

  cancel(id: string): Promise<unknown> {
    return this.call(`workloads/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  /** Restart one of my sessions with other GPUs; the hub stops and starts its server (files kept). */
  restart(id: string, gpus: number): Promise<{ workload: IWorkload; restarting: boolean }> {
    return this.call(`workloads/${encodeURIComponent(id)}/restart`, {
      method: 'POST',
      body: JSON.stringify({ gpus })
    });
  }

  resize(id: string, gpus: number): Promise<IWorkload> {
    return this.call<IWorkload>(`workloads/${encodeURIComponent(id)}/resize`, {
      method: 'POST',
      body: JSON.stringify({ gpus })
    });
  }
}
