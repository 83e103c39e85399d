/**
 * The GPU pool side panel: the pool at a glance, my sessions and jobs, a form
 * to submit a batch job, resize and cancel, and reclaim warnings.
 */
import { Widget } from '@lumino/widgets';

import { IGpu, IJobRequest, IWorkload } from './api';
import { duration, gpuCount, h, splitCommand, untilText } from './dom';
import { describe, PoolModel } from './model';

/** A held GPU without activity for this long is drawn as idle. */
const IDLE_AFTER_SECONDS = 60;

const FINISHED_STATES = new Set(['completed', 'failed', 'cancelled']);
/** How many finished workloads stay listed under "My sessions and jobs". */
const FINISHED_SHOWN = 5;

export class PoolPanel extends Widget {
  constructor(private readonly model: PoolModel) {
    super();
    this.id = 'gpupool-panel';
    this.addClass('gp-Panel');
    this.title.caption = 'GPU pool';

    this.node.append(
      h('header', { className: 'gp-Header' }, h('h2', {}, 'GPU pool'), this._whoami, this._refreshed),
      this._error,
      this._notice,
      this._warnings,
      h('section', { className: 'gp-Section' }, h('h3', {}, 'Pool'), this._legend(), this._grid),
      h('section', { className: 'gp-Section' }, h('h3', {}, 'My sessions and jobs'), this._workloads),
      h('section', { className: 'gp-Section' }, h('h3', {}, 'Submit a batch job'), this._form()),
      h('section', { className: 'gp-Section' }, h('h3', {}, 'What happened'), this._events)
    );
    model.changed.connect(this._render, this);
    this._render();
  }

  dispose(): void {
    this.model.changed.disconnect(this._render, this);
    super.dispose();
  }

  // ------------------------------------------------------------ rendering

  private _render(): void {
    const m = this.model;
    this._whoami.textContent = m.me ? `${m.me.user} · team ${m.me.teams.join(', ') || '(none)'}` : '';
    this._refreshed.textContent = m.refreshedAt
      ? `updated ${m.refreshedAt.toLocaleTimeString()}`
      : m.error
        ? 'not updated'
        : 'loading…';
    this._error.replaceChildren(...(m.error ? [h('strong', {}, 'The GPU pool reported a problem: '), m.error] : []));
    this._error.hidden = !m.error;
    this._renderWarnings();
    this._renderGrid();
    this._renderWorkloads();
    this._renderEvents();
  }

  private _legend(): HTMLElement {
    const item = (cls: string, label: string) => h('span', { className: 'gp-LegendItem' }, h('span', { className: `gp-Swatch ${cls}` }), label);
    return h(
      'div',
      { className: 'gp-Legend' },
      item('gp-free', 'free'),
      item('gp-used', 'in use'),
      item('gp-mine', 'mine'),
      item('gp-partial', 'shared (fractions)'),
      item('gp-idle', 'idle')
    );
  }

  private _renderGrid(): void {
    const pool = this.model.pool;
    const models = [...new Set((pool?.nodes ?? []).flatMap(n => n.gpus.map(g => g.model)))].sort();
    if (models.join('\n') !== this._models.dataset.models) {
      this._models.dataset.models = models.join('\n');
      this._models.replaceChildren(...models.map(m => h('option', { value: m })));
    }
    if (!pool) {
      this._grid.replaceChildren(h('p', { className: 'gp-Muted' }, this.model.error ? 'Pool not available.' : 'Loading the pool…'));
      return;
    }
    if (!pool.nodes.length) {
      this._grid.replaceChildren(h('p', { className: 'gp-Muted' }, 'The pool has no nodes yet.'));
      return;
    }
    const me = this.model.me?.user;
    this._grid.replaceChildren(
      ...pool.nodes.map(node => {
        const simulated = node.simulated ?? node.gpus.some(g => g.simulated);
        return h(
          'div',
          { className: 'gp-Node', 'data-node': node.name },
          h(
            'div',
            { className: 'gp-NodeName' },
            node.name,
            simulated ? h('span', { className: 'gp-Badge gp-Simulated', title: 'A declared node with no real GPUs behind it (demo or test)' }, 'simulated') : null,
            node.schedulable === false ? h('span', { className: 'gp-Badge' }, 'not schedulable') : null
          ),
          h('div', { className: 'gp-Gpus' }, node.gpus.map(g => this._gpuCell(g, me)))
        );
      })
    );
  }

  private _gpuCell(gpu: IGpu, me: string | undefined): HTMLElement {
    const mine = gpu.holders.some(holder => holder.user === me);
    const held = gpu.holders.length > 0;
    const idle = held && (gpu.idle_seconds ?? 0) >= IDLE_AFTER_SECONDS;
    const partial = held && gpu.used_fraction > 0 && gpu.used_fraction < 1 - 1e-9;
    const look = mine ? 'mine' : held ? 'used' : 'free';
    const classes = ['gp-Gpu', `gp-${look}`, partial ? 'gp-partial' : '', idle ? 'gp-idle' : ''].filter(Boolean).join(' ');
    const holders = gpu.holders.map(x => `${x.user} (${x.team}) ${x.workload_id}${x.fraction < 1 ? ` ×${x.fraction}` : ''}`);
    const title = [
      `${gpu.node} GPU ${gpu.index}: ${gpu.model}, ${Math.round(gpu.memory_mib / 1024)} GiB`,
      gpu.simulated ? 'simulated GPU' : null,
      held ? `held by ${holders.join(', ')}` : 'free',
      gpu.utilization !== null && gpu.utilization !== undefined ? `utilisation ${Math.round(gpu.utilization)}%` : null,
      idle ? `idle for ${duration(gpu.idle_seconds ?? 0)}` : null
    ]
      .filter(Boolean)
      .join('\n');
    return h(
      'div',
      {
        className: classes,
        title,
        'data-gpu-uuid': gpu.uuid,
        'data-gpu-index': gpu.index,
        'data-look': look,
        'data-idle': idle ? 'true' : 'false'
      },
      h('span', { className: 'gp-GpuIndex' }, `${gpu.index}`),
      h('span', { className: 'gp-GpuModel' }, gpu.model.split('-')[0]),
      h(
        'span',
        { className: 'gp-GpuUse' },
        held ? (gpu.utilization !== null && gpu.utilization !== undefined ? `${Math.round(gpu.utilization)}%` : 'held') : 'free'
      ),
      partial ? h('span', { className: 'gp-FractionBar' }, h('span', { style: `width:${Math.round(gpu.used_fraction * 100)}%` })) : null,
      mine ? h('span', { className: 'gp-MineMark' }, 'mine') : null,
      idle ? h('span', { className: 'gp-IdleMark' }, 'idle') : null
    );
  }

  private _renderWarnings(): void {
    const warnings = this.model.reclaimWarnings;
    this._warnings.hidden = warnings.length === 0;
    this._warnings.replaceChildren(
      ...warnings.map(({ workload, secondsLeft, message, kind }) =>
        kind === 'preemption'
          ? h(
              'div',
              { className: 'gp-Warning', 'data-workload-id': workload.id, 'data-kind': 'preempting' },
              h('strong', {}, 'Preempting: '),
              `${workload.name || workload.id} loses its ${gpuCount(workload.allocation?.gpus ?? workload.gpus)} `,
              secondsLeft !== null && secondsLeft > 0
                ? `in ${duration(secondsLeft)}. Save your work: then ${workload.kind === 'session' ? 'this server is stopped (your files are kept)' : 'the job is stopped and requeued'}.`
                : 'now.',
              h('div', { className: 'gp-Muted' }, message)
            )
          : h(
          'div',
          { className: 'gp-Warning', 'data-workload-id': workload.id },
          h('strong', {}, 'Idle GPUs will be reclaimed: '),
          `${workload.name || workload.id} holds ${gpuCount(workload.allocation?.gpus ?? workload.gpus)} without using them. `,
          secondsLeft === null
            ? 'They go back to the pool as soon as someone is waiting for GPUs, unless you use them.'
            : secondsLeft > 0
              ? `They go back to the pool in ${duration(secondsLeft)} unless you use them.`
              : 'They are being returned to the pool now.',
          h('div', { className: 'gp-Muted' }, message)
        )
      )
    );
  }

  private _renderEvents(): void {
    const events = this.model.events;
    this._events.replaceChildren(
      ...(events.length
        ? events
            .slice()
            .reverse()
            .map(e =>
              h(
                'li',
                { 'data-kind': e.kind },
                h('span', { className: 'gp-EventKind' }, e.kind),
                ` ${e.workload_id ?? ''} `,
                h('span', { className: 'gp-Muted' }, new Date(e.at).toLocaleTimeString()),
                h('div', {}, e.message)
              )
            )
        : [h('li', { className: 'gp-Muted' }, 'Nothing has happened to your work yet.')])
    );
  }

  private _renderWorkloads(): void {
    // Keep what the user is typing into a resize box across refreshes.
    const focused = document.activeElement as HTMLInputElement | null;
    const focusedId = focused && this._workloads.contains(focused) ? focused.dataset.workloadId : undefined;
    for (const input of Array.from(this._workloads.querySelectorAll<HTMLInputElement>('input.gp-ResizeInput'))) {
      if (input.value !== input.defaultValue) {
        this._resizeDrafts.set(input.dataset.workloadId ?? '', input.value);
      } else {
        this._resizeDrafts.delete(input.dataset.workloadId ?? '');
      }
    }

    const all = this.model.workloads;
    const active = all.filter(w => !FINISHED_STATES.has(w.state));
    const finished = all
      .filter(w => FINISHED_STATES.has(w.state))
      .sort((a, b) => (b.finished_at ?? '').localeCompare(a.finished_at ?? ''))
      .slice(0, FINISHED_SHOWN);
    const shown = [...active, ...finished];
    if (!shown.length) {
      this._workloads.replaceChildren(h('p', { className: 'gp-Muted' }, this.model.pool ? 'Nothing yet: no sessions or jobs of yours.' : ''));
      return;
    }
    this._workloads.replaceChildren(...shown.map(w => this._workloadCard(w)));
    if (focusedId) {
      const again = this._workloads.querySelector<HTMLInputElement>(`input[data-workload-id="${CSS.escape(focusedId)}"]`);
      again?.focus();
    }
  }

  /** One workload as a card: the panel is often narrow, so no wide table. */
  private _workloadCard(w: IWorkload): HTMLElement {
    const held = w.allocation?.gpus ?? 0;
    const thisServer = this.model.me?.session_workload_id === w.id;
    const where = (w.allocation?.shares ?? []).map(s => `${s.node}:${s.index}${s.fraction < 1 ? `×${s.fraction}` : ''}`).join(', ');
    const expected = untilText(w.expected_start);
    const gpusText =
      w.state === 'running' || w.state === 'stopping'
        ? `${gpuCount(held)}${held !== w.gpus ? ` (asked ${gpuCount(w.gpus)})` : ''}`
        : `${gpuCount(w.gpus)} asked`;
    const facts = [
      `${w.kind} ${w.id}`,
      thisServer ? 'this server' : null,
      where ? `on ${where}` : null,
      w.exit_code !== null && w.exit_code !== undefined ? `exit code ${w.exit_code}` : null,
      w.preemptions ? `preempted ${w.preemptions}×` : null
    ].filter(Boolean);
    return h(
      'div',
      { className: `gp-Row gp-state-${w.state}`, 'data-workload-id': w.id, 'data-state': w.state, 'data-kind': w.kind },
      h(
        'div',
        { className: 'gp-RowHead' },
        h('span', { className: 'gp-WName' }, w.name || w.id),
        h('span', { className: `gp-State gp-State-${w.state}` }, w.state),
        h('span', { className: 'gp-WGpus' }, gpusText)
      ),
      h('div', { className: 'gp-Muted' }, facts.join(' · ')),
      w.state === 'pending'
        ? h(
            'div',
            { className: 'gp-WWait' },
            'queue position ',
            h('b', { className: 'gp-WQueue' }, w.queue_position ? `#${w.queue_position}` : '?'),
            expected ? ` · expected to start ${expected}` : ''
          )
        : null,
      w.reason ? h('div', { className: 'gp-WReason' }, w.reason) : null,
      h('div', { className: 'gp-WActions' }, this._actions(w))
    );
  }

  private _actions(w: IWorkload): HTMLElement[] {
    if (w.kind !== 'job' || FINISHED_STATES.has(w.state) || w.state === 'stopping') {
      return [];
    }
    const buttons: HTMLElement[] = [];
    const elastic = w.min_gpus !== null && w.max_gpus !== null && w.min_gpus !== undefined && w.max_gpus !== undefined;
    if (elastic && w.state === 'running') {
      const input = h('input', {
        type: 'number',
        className: 'gp-ResizeInput',
        min: w.min_gpus,
        max: w.max_gpus,
        step: 1,
        value: String(w.allocation?.gpus ?? w.gpus),
        'data-workload-id': w.id,
        'aria-label': `GPUs for ${w.name || w.id}`,
        title: `between ${w.min_gpus} and ${w.max_gpus} GPUs`
      }) as HTMLInputElement;
      const draft = this._resizeDrafts.get(w.id);
      if (draft !== undefined) {
        input.value = draft;
      }
      buttons.push(
        h(
          'span',
          { className: 'gp-Resize' },
          input,
          h(
            'button',
            {
              className: 'jp-mod-styled gp-Button',
              'data-action': 'resize',
              onclick: () => void this._resize(w, input)
            },
            'Resize'
          )
        )
      );
    }
    buttons.push(
      h(
        'button',
        {
          className: 'jp-mod-styled gp-Button gp-Danger',
          'data-action': 'cancel',
          onclick: () => void this._cancel(w)
        },
        w.state === 'running' ? 'Stop' : 'Cancel'
      )
    );
    return buttons;
  }

  // ------------------------------------------------------------ actions

  private async _resize(w: IWorkload, input: HTMLInputElement): Promise<void> {
    const gpus = Number(input.value);
    if (!Number.isInteger(gpus) || gpus < (w.min_gpus ?? 1) || gpus > (w.max_gpus ?? gpus)) {
      this._say(`Resize ${w.name || w.id}: choose a whole number of GPUs between ${w.min_gpus} and ${w.max_gpus}.`, true);
      return;
    }
    await this._act(`Resize ${w.name || w.id}`, async () => {
      await this.model.api.resize(w.id, gpus);
      this._resizeDrafts.delete(w.id);
      return `Asked to resize ${w.name || w.id} to ${gpuCount(gpus)}.`;
    });
  }

  private async _cancel(w: IWorkload): Promise<void> {
    const verb = w.state === 'running' ? 'Stop' : 'Cancel';
    await this._act(`${verb} ${w.name || w.id}`, async () => {
      await this.model.api.cancel(w.id);
      return `${w.state === 'running' ? 'Stopped' : 'Cancelled'} ${w.name || w.id}; its GPUs go back to the pool.`;
    });
  }

  private async _act(what: string, action: () => Promise<string>): Promise<void> {
    try {
      this._say(await action(), false);
    } catch (reason) {
      this._say(`${what} failed: ${describe(reason)}`, true);
    }
    await this.model.refresh();
  }

  private _say(text: string, isError: boolean): void {
    this._notice.className = isError ? 'gp-Notice gp-NoticeError' : 'gp-Notice';
    this._notice.textContent = text;
    this._notice.hidden = false;
  }

  // ------------------------------------------------------------ the job form

  private _form(): HTMLElement {
    const field = (label: string, input: HTMLElement, hint?: string) =>
      h('label', { className: 'gp-Field' }, h('span', {}, label), input, hint ? h('small', { className: 'gp-Muted' }, hint) : null);
    const name = h('input', { name: 'name', type: 'text', placeholder: 'train-resnet', required: true }) as HTMLInputElement;
    const command = h('input', { name: 'command', type: 'text', placeholder: 'python train.py --epochs 10', required: true }) as HTMLInputElement;
    const gpus = h('input', { name: 'gpus', type: 'number', min: 0.05, step: 'any', value: 1, required: true }) as HTMLInputElement;
    const minGpus = h('input', { name: 'min_gpus', type: 'number', min: 1, step: 1, placeholder: 'min' }) as HTMLInputElement;
    const maxGpus = h('input', { name: 'max_gpus', type: 'number', min: 1, step: 1, placeholder: 'max' }) as HTMLInputElement;
    const model = h('input', { name: 'gpu_model', type: 'text', placeholder: 'any model', list: 'gp-gpu-models' }) as HTMLInputElement;

    const form = h(
      'form',
      {
        className: 'gp-Form',
        onsubmit: (event: Event) => {
          event.preventDefault();
          void this._submit({ name, command, gpus, minGpus, maxGpus, model }, form as HTMLFormElement);
        }
      },
      field('Name', name),
      field('Command', command, 'runs in your home directory with the GPUs it is given'),
      field('GPUs', gpus, 'a whole number, or a fraction below 1 to share a card'),
      h('div', { className: 'gp-Row2' }, field('Elastic: min GPUs', minGpus), field('max GPUs', maxGpus)),
      field('GPU model', model),
      this._models,
      h('button', { type: 'submit', className: 'jp-mod-styled jp-mod-accept gp-Button', 'data-action': 'submit' }, 'Submit job')
    );
    return form;
  }

  private async _submit(
    inputs: Record<'name' | 'command' | 'gpus' | 'minGpus' | 'maxGpus' | 'model', HTMLInputElement>,
    form: HTMLFormElement
  ): Promise<void> {
    let job: IJobRequest;
    try {
      job = this._jobFrom(inputs);
    } catch (reason) {
      this._say(`Cannot submit: ${describe(reason)}`, true);
      return;
    }
    await this._act(`Submitting ${job.name}`, async () => {
      const w = await this.model.api.submit(job);
      form.reset();
      const where = w.state === 'running' ? 'running now' : w.queue_position ? `queued at position ${w.queue_position}` : w.state;
      return `Submitted ${w.name || w.id} (${w.id}): ${where}.`;
    });
  }

  private _jobFrom(inputs: Record<'name' | 'command' | 'gpus' | 'minGpus' | 'maxGpus' | 'model', HTMLInputElement>): IJobRequest {
    const name = inputs.name.value.trim();
    if (!name) {
      throw new Error('give the job a name');
    }
    const command = splitCommand(inputs.command.value.trim());
    if (!command.length) {
      throw new Error('give the command to run');
    }
    const gpus = Number(inputs.gpus.value);
    if (!(gpus > 0) || (gpus > 1 && !Number.isInteger(gpus))) {
      throw new Error('GPUs must be a whole number, or a fraction between 0 and 1');
    }
    const min = inputs.minGpus.value ? Number(inputs.minGpus.value) : null;
    const max = inputs.maxGpus.value ? Number(inputs.maxGpus.value) : null;
    if ((min === null) !== (max === null)) {
      throw new Error('an elastic job needs both a minimum and a maximum number of GPUs');
    }
    if (min !== null && max !== null && !(min <= gpus && gpus <= max)) {
      throw new Error(`GPUs (${gpus}) must lie between the elastic minimum (${min}) and maximum (${max})`);
    }
    return { name, command, gpus, min_gpus: min, max_gpus: max, gpu_model: inputs.model.value.trim() || null };
  }

  private readonly _whoami = h('div', { className: 'gp-Muted gp-Whoami' });
  private readonly _refreshed = h('div', { className: 'gp-Muted gp-Refreshed' });
  private readonly _error = h('div', { className: 'gp-Error', role: 'alert', hidden: true });
  private readonly _notice = h('div', { className: 'gp-Notice', role: 'status', hidden: true });
  private readonly _warnings = h('div', { className: 'gp-Warnings', hidden: true });
  private readonly _grid = h('div', { className: 'gp-Grid' });
  private readonly _workloads = h('div', { className: 'gp-Workloads' });
  private readonly _events = h('ul', { className: 'gp-Events' });
  private readonly _resizeDrafts = new Map<string, string>();
  /** The GPU models in the pool, offered in the job form. */
  private readonly _models = h('datalist', { id: 'gp-gpu-models' });
}
