/** Shapes of the REST contract (docs/api.md, the OpenAPI document); states and kinds come from states.ts. */
import { GpuState, WorkloadKind, WorkloadState } from './states.js';

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
  state: GpuState | string;
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
  source?: string;
  last_reading_at?: string | null;
  /** Errors the node's agent reported with its last readings (NVML failures). */
  errors?: string[] | null;
  gpus: IGpu[];
}

export interface IPool {
  nodes: INode[];
  simulated?: boolean;
  totals?: { gpus: number; free: number; used: number; idle: number };
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
  kind: WorkloadKind;
  state: WorkloadState | string;
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
  expected_start_basis?: string | null;
  submitted_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  preemptions: number;
  idle_seconds: number | null;
  /** GPU-seconds held so far over all runs (attained service). */
  attained_gpu_s?: number;
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
  time_limit_s?: number | null;
}


/** A pending workload in ``api/queue``; other users' entries carry no name or command. */
export interface IQueueEntry {
  id: string;
  name?: string | null;
  user: string;
  team: string;
  kind: WorkloadKind;
  gpus: number;
  state: WorkloadState | string;
  queue_position: number | null;
  reason: string | null;
  expected_start?: string | null;
  expected_start_basis?: string | null;
  submitted_at?: string | null;
}

export interface ITeam {
  name: string;
  quota: number;
  over_quota_weight: number;
  limit: number | null;
  usage: number;
  borrowed: number;
  pending?: number;
}
