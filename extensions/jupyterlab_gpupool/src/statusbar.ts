/**
 * Status bar item: the GPUs this JupyterLab server holds and how busy they are.
 */
import { Widget } from '@lumino/widgets';

import { gpuCount } from './kit';
import { PoolModel } from './model';

export class GpuStatus extends Widget {
  constructor(
    private readonly model: PoolModel,
    private readonly onOpen: () => void
  ) {
    super();
    this.addClass('gp-Status');
    this.addClass('jp-StatusBar-TextItem');
    this.node.addEventListener('click', () => this.onOpen());
    model.changed.connect(this._render, this);
    this._render();
  }

  dispose(): void {
    this.model.changed.disconnect(this._render, this);
    super.dispose();
  }

  private _render(): void {
    const m = this.model;
    if (m.error) {
      this.node.textContent = 'GPU: pool unreachable';
      this.node.title = m.error;
      this.node.dataset.held = '';
      return;
    }
    const session = m.mySession;
    if (!session) {
      this.node.textContent = m.pool ? 'GPU: none' : 'GPU: …';
      this.node.title = m.pool ? 'This server holds no GPUs from the pool. Click to open the GPU pool panel.' : 'Loading the GPU pool…';
      this.node.dataset.held = m.pool ? '0' : '';
      return;
    }
    const held = session.allocation?.gpus ?? 0;
    const gpus = m.gpusOf(session);
    const readings = gpus.map(g => g.utilization).filter((u): u is number => u !== null && u !== undefined);
    const busy = readings.length ? `${Math.round(readings.reduce((a, b) => a + b, 0) / readings.length)}%` : 'no reading';
    this.node.dataset.held = String(held);
    if (session.state === 'pending') {
      this.node.textContent = `GPU: queued${session.queue_position ? ` #${session.queue_position}` : ''}`;
    } else {
      this.node.textContent = held ? `GPU: ${gpuCount(held)} · ${busy}` : 'GPU: none';
    }
    this.node.title = [
      `This server (${session.id}) holds ${gpuCount(held)}.`,
      ...gpus.map(g => `${g.node} GPU ${g.index} (${g.model}): ${g.utilization ?? '?'}% busy, ${g.memory_used_mib ?? '?'} / ${g.memory_mib} MiB`),
      'Click to open the GPU pool panel.'
    ].join('\n');
  }
}
