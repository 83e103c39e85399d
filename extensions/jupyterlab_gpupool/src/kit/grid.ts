/**
 * The pool grid, drawn the same way in the lab panel and on the admin page.
 *
 * A small pool shows every GPU as a cell. A large one (more GPUs than
 * ``collapseAbove``) shows each node as one bar (mine, in use, idle, free)
 * with a count, and the node's GPUs on demand: a 128-GPU pool stays one
 * screen tall. Nodes whose agent fell silent or reported errors say so.
 */
import { h } from './dom.js';
import { duration, gpuCount, since } from './format.js';
import { IGpu, INode, IPool } from './types.js';

/** A held GPU without activity for this long is drawn as idle. */
export const IDLE_AFTER_SECONDS = 60;

export interface IGridOptions {
  /** The user looking: their GPUs are drawn as "mine". */
  me?: string | null;
  /** Pools with more GPUs than this collapse each node into a bar. */
  collapseAbove?: number;
  /** Nodes shown GPU by GPU although the pool is collapsed. */
  expanded?: Set<string>;
  /** Called when a node's bar is opened or closed (the caller keeps ``expanded`` and redraws). */
  onToggle?: (node: string) => void;
  /** Cells also list holders and memory (the admin page has the room). */
  detailed?: boolean;
  /** A node whose last reading is older than this is shown as silent. */
  silentAfterSeconds?: number;
  now?: number;
}

export type GpuLook = 'mine' | 'used' | 'free';

export interface IGpuFacts {
  look: GpuLook;
  held: boolean;
  idle: boolean;
  partial: boolean;
}

export function gpuFacts(gpu: IGpu, me?: string | null): IGpuFacts {
  const held = gpu.holders.length > 0;
  const mine = !!me && gpu.holders.some(x => x.user === me);
  return {
    look: mine ? 'mine' : held ? 'used' : 'free',
    held,
    idle: held && (gpu.idle_seconds ?? 0) >= IDLE_AFTER_SECONDS,
    partial: held && gpu.used_fraction > 0 && gpu.used_fraction < 1 - 1e-9
  };
}

/** Per node: how many GPUs are mine, held by others, idle while held, free. */
export function nodeCounts(node: INode, me?: string | null): { mine: number; used: number; idle: number; free: number } {
  const counts = { mine: 0, used: 0, idle: 0, free: 0 };
  for (const g of node.gpus) {
    const f = gpuFacts(g, me);
    if (!f.held) {
      counts.free += 1;
    } else if (f.look === 'mine') {
      counts.mine += 1;
    } else if (f.idle) {
      counts.idle += 1;
    } else {
      counts.used += 1;
    }
  }
  return counts;
}

/** What is wrong with a node's agent, in words; null when nothing is. */
export function nodeHealth(node: INode, silentAfterSeconds: number, now: number = Date.now()): string | null {
  const problems: string[] = [];
  if (node.errors && node.errors.length) {
    problems.push(`agent errors: ${node.errors.join('; ')}`);
  }
  if (node.last_reading_at) {
    const age = (now - Date.parse(node.last_reading_at)) / 1000;
    if (age > silentAfterSeconds) {
      problems.push(`agent silent for ${duration(age)}`);
    }
  }
  return problems.length ? problems.join(' · ') : null;
}

export function gpuCell(gpu: IGpu, options: IGridOptions = {}): HTMLElement {
  const f = gpuFacts(gpu, options.me);
  const classes = ['gp-Gpu', `gp-${f.look}`, f.partial ? 'gp-partial' : '', f.idle ? 'gp-idle' : ''].filter(Boolean).join(' ');
  const holders = gpu.holders.map(x => `${x.user} (${x.team}) ${x.workload_id}${x.fraction < 1 ? ` ×${x.fraction}` : ''}`);
  const util = gpu.utilization !== null && gpu.utilization !== undefined ? `${Math.round(gpu.utilization)}%` : null;
  const title = [
    `${gpu.node} GPU ${gpu.index}: ${gpu.model}, ${Math.round(gpu.memory_mib / 1024)} GiB`,
    gpu.simulated ? 'simulated GPU' : null,
    f.held ? `held by ${holders.join(', ')}` : 'free',
    util ? `utilisation ${util}` : null,
    f.idle ? `idle for ${duration(gpu.idle_seconds ?? 0)}` : null
  ]
    .filter(Boolean)
    .join('\n');
  const memory =
    gpu.memory_used_mib !== null && gpu.memory_used_mib !== undefined
      ? `${Math.round(gpu.memory_used_mib / 1024)}/${Math.round(gpu.memory_mib / 1024)} GiB`
      : `${Math.round(gpu.memory_mib / 1024)} GiB`;
  return h(
    'div',
    {
      className: classes,
      title,
      'data-gpu-uuid': gpu.uuid,
      'data-gpu-index': gpu.index,
      'data-look': f.look,
      'data-idle': f.idle ? 'true' : 'false'
    },
    h('span', { className: 'gp-GpuIndex' }, `${gpu.index}`),
    h('span', { className: 'gp-GpuModel' }, options.detailed ? gpu.model : gpu.model.split('-')[0]),
    h('span', { className: 'gp-GpuUse' }, f.held ? (util ?? 'held') : 'free'),
    f.partial ? h('span', { className: 'gp-FractionBar' }, h('span', { style: `width:${Math.round(gpu.used_fraction * 100)}%` })) : null,
    f.look === 'mine' ? h('span', { className: 'gp-MineMark' }, 'mine') : null,
    options.detailed ? h('span', { className: 'gp-GpuMemory' }, memory) : null,
    options.detailed && f.held ? h('span', { className: 'gp-Holders' }, holders.map(x => h('span', {}, x))) : null,
    f.idle ? h('span', { className: 'gp-IdleMark' }, options.detailed ? `idle ${duration(gpu.idle_seconds ?? 0)}` : 'idle') : null
  );
}

/** A node as one bar: segments for mine, in use, idle and free, widths by GPU count. */
export function nodeBar(node: INode, me?: string | null): HTMLElement {
  const c = nodeCounts(node, me);
  const total = Math.max(1, node.gpus.length);
  const segment = (look: string, n: number) =>
    n ? h('span', { className: `gp-Seg gp-${look}`, style: `width:${(100 * n) / total}%`, 'data-look': look, title: `${n} ${look}` }) : null;
  return h('span', { className: 'gp-NodeBar', role: 'img', 'aria-label': barLabel(c) }, segment('mine', c.mine), segment('used', c.used), segment('idle', c.idle), segment('free', c.free));
}

function barLabel(c: { mine: number; used: number; idle: number; free: number }): string {
  return [c.mine ? `${c.mine} mine` : null, c.used ? `${c.used} in use` : null, c.idle ? `${c.idle} idle` : null, `${c.free} free`]
    .filter(Boolean)
    .join(' · ');
}

/** The whole pool: one block per node, cells or a bar as the pool's size asks. */
export function poolGrid(pool: IPool, options: IGridOptions = {}): HTMLElement[] {
  const total = pool.nodes.reduce((n, node) => n + node.gpus.length, 0);
  const collapsed = total > (options.collapseAbove ?? Infinity);
  const silentAfter = options.silentAfterSeconds ?? 120;
  return pool.nodes.map(node => {
    const simulated = node.simulated ?? node.gpus.some(g => g.simulated);
    const open = !collapsed || (options.expanded?.has(node.name) ?? false);
    const health = nodeHealth(node, silentAfter, options.now);
    const c = nodeCounts(node, options.me);
    const head = h(
      'div',
      { className: 'gp-NodeName' },
      collapsed
        ? h(
            'button',
            {
              className: 'gp-NodeToggle',
              'aria-expanded': open ? 'true' : 'false',
              title: open ? 'Hide the GPUs of this node' : 'Show the GPUs of this node',
              onclick: () => options.onToggle?.(node.name)
            },
            open ? '▾' : '▸'
          )
        : null,
      h('span', { className: 'gp-NodeLabel' }, node.name),
      collapsed ? nodeBar(node, options.me) : null,
      collapsed ? h('span', { className: 'gp-Muted gp-NodeCount' }, `${node.gpus.length - c.free}/${node.gpus.length} held${c.idle ? `, ${c.idle} idle` : ''}`) : null,
      simulated ? h('span', { className: 'gp-Badge gp-Simulated', title: 'A declared node with no real GPUs behind it (demo or test)' }, 'simulated') : null,
      node.schedulable === false ? h('span', { className: 'gp-Badge' }, 'not schedulable') : null,
      health ? h('span', { className: 'gp-Badge gp-Unhealthy', title: health }, health) : null,
      options.detailed && node.last_reading_at && !health ? h('span', { className: 'gp-Muted' }, `reading ${since(node.last_reading_at, options.now)} ago`) : null
    );
    return h(
      'div',
      {
        className: `gp-Node${health ? ' gp-NodeUnhealthy' : ''}`,
        'data-node': node.name,
        'data-expanded': open ? 'true' : 'false',
        'data-health': health ? 'bad' : 'ok'
      },
      head,
      open ? h('div', { className: 'gp-Gpus' }, node.gpus.map(g => gpuCell(g, options))) : null
    );
  });
}

/** "12 of 128 GPUs held, 3 idle, 116 free" */
export function poolSummary(pool: IPool): string {
  const gpus = pool.nodes.flatMap(n => n.gpus);
  const held = gpus.filter(g => g.holders.length).length;
  const idle = gpus.filter(g => gpuFacts(g).idle).length;
  return `${held} of ${gpuCount(gpus.length)} held${idle ? `, ${idle} idle` : ''}, ${gpus.length - held} free`;
}

/** The colour key under a grid. */
export function legend(): HTMLElement {
  const item = (cls: string, label: string) => h('span', { className: 'gp-LegendItem' }, h('span', { className: `gp-Swatch ${cls}` }), label);
  return h(
    'div',
    { className: 'gp-Legend' },
    item('gp-free', 'free'),
    item('gp-used', 'in use'),
    item('gp-mine', 'mine'),
    item('gp-partial', 'shared (fractions)'),
    item('gp-idle', 'idle while held')
  );
}
