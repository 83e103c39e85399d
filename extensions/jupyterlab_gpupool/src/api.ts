/**
 * Talking to the pool service through this server's `gpupool` server extension.
 *
 * The browser never holds a pool-service token: the server extension forwards
 * each call with the single-user server's own JupyterHub token, so the pool
 * service sees the user who owns this server.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** Shapes of the REST contract in docs/architecture.md (only the fields the UI reads). */
export interface IGpuHolder {
  workload_id: string;
  user: string;
  team: string;
  fraction: number;
}

export interface IGpu {
  node: string;
  index: number;
  uuid: string;
  model: string;
  memory_mib: number;
  simulated: boolean;
  state: 'free' | 'used' | 'partial' | string;
  used_fraction: number;
  holders: IGpuHolder[];
  utilization: number | null;
  memory_used_mib: number | null;
  idle_seconds: number | null;
}

export interface INode {
  name: string;
  simulated?: boolean;
  schedulable?: boolean;
  gpus: IGpu[];
}

export interface IPool {
  nodes: INode[];
  simulated?: boolean;
}

export interface IShare {
  node: string;
  gpu_uuid: string;
  index: number;
  fraction: number;
  memory_mib: number | null;
}

export interface IWorkload {
  id: string;
  name: string;
  user: string;
  team: string;
  kind: 'session' | 'job';
  state: string;
  gpus: number;
  min_gpus: number | null;
  max_gpus: number | null;
  gpu_model: string | null;
  priority: number;
  command: string[] | null;
  allocation: { gpus: number; shares: IShare[] } | null;
  queue_position: number | null;
  reason: string | null;
  expected_start: string | null;
  submitted_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  preemptions: number;
  idle_seconds: number | null;
}

export interface IMe {
  user: string;
  teams: string[];
  admin: boolean;
  /** The workload this very JupyterLab server runs as (filled in by the server extension). */
  session_workload_id?: string | null;
}

export interface IPoolEvent {
  id: number;
  at: string;
  kind: string;
  workload_id: string | null;
  user: string | null;
  team: string | null;
  message: string;
  details: Record<string, unknown> | null;
}

export interface IJobRequest {
  name: string;
  command: string[];
  gpus: number;
  min_gpus?: number | null;
  max_gpus?: number | null;
  gpu_model?: string | null;
  team?: string | null;
}

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

  cancel(id: string): Promise<unknown> {
    return this.call(`workloads/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  resize(id: string, gpus: number): Promise<IWorkload> {
    return this.call<IWorkload>(`workloads/${encodeURIComponent(id)}/resize`, {
      method: 'POST',
      body: JSON.stringify({ gpus })
    });
  }
}
