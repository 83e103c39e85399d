/**
 * The panel's small widgets, each drawing one part of the model: my work,
 * my team, the queue, the pool, the job form, what happened. They share the
 * UI kit (./kit) with the hub admin page.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IJobRequest, IWorkload } from './api';
import { duration, elapsedSeconds, gpuCount, h, heldGpuHours, isFinished, joinCommand, legend, placement, poolGrid, poolSummary, splitCommand, untilText } from './kit';
import { describe, PoolModel } from './model';

/** Where a section says what an action did (the panel's notice line). */
export type Say = (text: string, isError: boolean) => void;

/** A titled section redrawn whenever the model changes. */
abstract class Section extends Widget {
  constructor(
    protected readonly model: PoolModel,
    protected readonly say: Say,
    title: string,
    className: string
  ) {
    super();
    this.addClass('gp-Section');
    this.addClass(className);
    this.body = h('div', { className: 'gp-SectionBody' });
    this.heading = h('h3', {}, title);
    this.node.append(this.heading, this.body);
    model.changed.connect(this.render, this);
  }

  dispose(): void {
    this.model.changed.disconnect(this.render, this);
    super.dispose();
  }

  protected get trans(): TranslationBundle {
    return this.model.trans;
  }

  abstract render(): void;

  /** Run an action, say how it went, and refresh at once. */
  protected async act(what: string, action: () => Promise<string | null>): Promise<void> {
    try {
      const done = await action();
      if (done) {
        this.say(done, false);
      }
    } catch (reason) {
      this.say(this.trans.__('%1 failed: %2', what, describe(reason)), true);
    }
    await this.model.refresh().catch(() => undefined);
  }

  protected readonly heading: HTMLElement;
  protected readonly body: HTMLElement;
}

// ---------------------------------------------------------------- my work

/** My sessions and jobs first: state, GPUs, elapsed time, queue position, actions, logs. */
export class MyWork extends Section {
  constructor(model: PoolModel, say: Say) {
    super(model, say, model.trans.__('My sessions and jobs'), 'gp-MyWork');
    this.render();
  }

  render(): void {
    // Keep what the user is typing into a resize box across refreshes.
    const focused = document.activeElement as HTMLInputElement | null;
    const focusedId = focused && this.body.contains(focused) ? focused.dataset.workloadId : undefined;
    for (const input of Array.from(this.body.querySelectorAll<HTMLInputElement>('input.gp-ResizeInput'))) {
      if (input.value !== input.defaultValue) {
        this._resizeDrafts.set(input.dataset.workloadId ?? '', input.value);
      } else {
        this._resizeDrafts.delete(input.dataset.workloadId ?? '');
      }
    }
    const all = this.model.workloads;
    const active = all.filter(w => !isFinished(w.state));
    const finished = all
      .filter(w => isFinished(w.state))
      .sort((a, b) => (b.finished_at ?? '').localeCompare(a.finished_at ?? ''))
      .slice(0, this.model.settings.finishedShown);
    const shown = [...active, ...finished];
    if (!shown.length) {
      this.body.replaceChildren(h('p', { className: 'gp-Muted' }, this.model.pool ? this.trans.__('Nothing yet: no sessions or jobs of yours.') : ''));
      return;
    }
    this.body.replaceChildren(...shown.map(w => this._card(w)));
    if (focusedId) {
      this.body.querySelector<HTMLInputElement>(`input[data-workload-id="${CSS.escape(focusedId)}"]`)?.focus();
    }
  }

  /** One workload as a card: the panel is often narrow, so no wide table. */
  private _card(w: IWorkload): HTMLElement {
    const trans = this.trans;
    const held = w.allocation?.gpus ?? 0;
    const thisServer = this.model.me?.session_workload_id === w.id;
    const where = placement(w.allocation?.shares);
    const expected = untilText(w.expected_start);
    const gpusText =
      w.state === 'running' || w.state === 'stopping'
        ? `${gpuCount(held)}${held !== w.gpus ? ` (${trans.__('asked %1', gpuCount(w.gpus))})` : ''}`
        : trans.__('%1 asked', gpuCount(w.gpus));
    const ran = elapsedSeconds(w.started_at, w.finished_at);
    const facts = [
      `${w.kind} ${w.id}`,
      thisServer ? trans.__('this server') : null,
      where ? trans.__('on %1', where) : null,
      ran !== null ? (w.state === 'running' ? trans.__('running for %1', duration(ran)) : trans.__('ran %1', duration(ran))) : null,
      w.state === 'pending' && w.submitted_at ? trans.__('waiting %1', duration(elapsedSeconds(w.submitted_at) ?? 0)) : null,
      w.exit_code !== null && w.exit_code !== undefined ? trans.__('exit code %1', w.exit_code) : null,
      w.preemptions ? trans.__('preempted %1×', w.preemptions) : null,
      heldGpuHours(w.attained_gpu_s) ? trans.__('held %1 GPU-h so far', heldGpuHours(w.attained_gpu_s)) : null
    ].filter(Boolean);
    const log = this._logs.get(w.id);
    return h(
      'div',
      { className: `gp-Row gp-state-${w.state}`, 'data-workload-id': w.id, 'data-state': w.state, 'data-kind': w.kind },
      h(
        'div',
        { className: 'gp-RowHead' },
        h('span', { className: 'gp-WName', title: joinCommand(w.command) }, w.name || w.id),
        h('span', { className: `gp-State gp-State-${w.state}` }, w.state),
        h('span', { className: 'gp-WGpus' }, gpusText)
      ),
      h('div', { className: 'gp-Muted gp-WFacts' }, facts.join(' · ')),
      w.state === 'pending'
        ? h(
            'div',
            { className: 'gp-WWait' },
            trans.__('queue position '),
            h('b', { className: 'gp-WQueue' }, w.queue_position ? `#${w.queue_position}` : '?'),
            expected ? ` · ${trans.__('expected to start %1 (an estimate)', expected)}` : ''
          )
        : null,
      w.reason ? h('div', { className: 'gp-WReason' }, w.reason) : null,
      h('div', { className: 'gp-WActions' }, this._actions(w)),
      log !== undefined ? h('pre', { className: 'gp-Log', 'data-workload-id': w.id }, log || trans.__('(no output yet)')) : null
    );
  }

  private _button(action: string, label: string, onclick: () => void, extra = ''): HTMLElement {
    return h('button', { className: `jp-mod-styled gp-Button ${extra}`.trim(), 'data-action': action, onclick }, label);
  }

  private _actions(w: IWorkload): HTMLElement[] {
    const trans = this.trans;
    const buttons: HTMLElement[] = [];
    if (w.kind === 'session' && (w.state === 'running' || w.state === 'pending') && (w.name === 'notebook' || (w.name ?? '').startsWith('notebook-'))) {
      buttons.push(this._button('restart', trans.__('Restart with other GPUs'), () => void this._restart(w)));
    }
    if (w.kind === 'job' && w.state !== 'pending') {
      const open = this._logs.has(w.id);
      buttons.push(this._button('logs', open ? trans.__('Hide log') : trans.__('Log'), () => void this._toggleLog(w)));
    }
    if (w.kind === 'job' && isFinished(w.state) && w.command) {
      buttons.push(this._button('resubmit', trans.__('Resubmit'), () => void this._resubmit(w)));
    }
    if (isFinished(w.state) || w.state === 'stopping') {
      return buttons;
    }
    const elastic = w.min_gpus !== null && w.max_gpus !== null && w.min_gpus !== undefined && w.max_gpus !== undefined;
    if (w.kind === 'job' && elastic && w.state === 'running') {
      const input = h('input', {
        type: 'number',
        className: 'gp-ResizeInput',
        min: w.min_gpus,
        max: w.max_gpus,
        step: 1,
        value: String(w.allocation?.gpus ?? w.gpus),
        'data-workload-id': w.id,
        'aria-label': trans.__('GPUs for %1', w.name || w.id),
        title: trans.__('between %1 and %2 GPUs', w.min_gpus ?? '', w.max_gpus ?? '')
      }) as HTMLInputElement;
      const draft = this._resizeDrafts.get(w.id);
      if (draft !== undefined) {
        input.value = draft;
      }
      buttons.push(h('span', { className: 'gp-Resize' }, input, this._button('resize', trans.__('Resize'), () => void this._resize(w, input))));
    }
    if (w.kind === 'job') {
      buttons.push(this._button('cancel', w.state === 'running' ? trans.__('Stop') : trans.__('Cancel'), () => void this._cancel(w), 'gp-Danger'));
    }
    return buttons;
  }

  /** Ask how many GPUs, have the pool restart the server through the hub, and follow it back. */
  private async _restart(w: IWorkload): Promise<void> {
    const trans = this.trans;
    const body = new GpuChoice(w.allocation?.gpus ?? w.gpus, trans);
    const answer = await showDialog({
      title: trans.__('Restart %1 with other GPUs?', w.name || w.id),
      body,
      buttons: [Dialog.cancelButton({ label: trans.__('Keep it') }), Dialog.okButton({ label: trans.__('Restart') })]
    });
    if (!answer.button.accept) {
      return;
    }
    const gpus = body.gpus;
    if (gpus === null) {
      this.say(trans.__('Restart: choose 0 or more GPUs (a whole number, or a fraction below 1).'), true);
      return;
    }
    const thisServer = this.model.me?.session_workload_id === w.id;
    try {
      await this.model.api.restart(w.id, gpus);
    } catch (reason) {
      this.say(trans.__('Restart of %1 failed: %2', w.name || w.id, describe(reason)), true);
      return;
    }
    this.say(trans.__('Restarting with %1; your files are kept. This page follows the server back.', gpuCount(gpus) || trans.__('no GPU')), false);
    if (thisServer) {
      await followRestart(this.model);
    }
  }

  private async _toggleLog(w: IWorkload): Promise<void> {
    if (this._logs.has(w.id)) {
      this._logs.delete(w.id);
      this.render();
      return;
    }
    try {
      const { text } = await this.model.api.logs(w.id);
      // The end of the output is what a person looks for first.
      this._logs.set(w.id, text.length > 8000 ? '…' + text.slice(-8000) : text);
    } catch (reason) {
      this.say(this.trans.__('Cannot read the log of %1: %2', w.name || w.id, describe(reason)), true);
    }
    this.render();
  }

  private async _resubmit(w: IWorkload): Promise<void> {
    const job: IJobRequest = {
      name: w.name || w.id,
      command: w.command ?? [],
      gpus: w.gpus,
      min_gpus: w.min_gpus,
      max_gpus: w.max_gpus,
      gpu_model: w.gpu_model,
      team: w.team
    };
    await this.act(this.trans.__('Resubmitting %1', job.name), async () => {
      const again = await this.model.api.submit(job);
      return this.trans.__('Resubmitted %1 as %2 (%3).', job.name, again.id, again.state);
    });
  }

  private async _resize(w: IWorkload, input: HTMLInputElement): Promise<void> {
    const gpus = Number(input.value);
    if (!Number.isInteger(gpus) || gpus < (w.min_gpus ?? 1) || gpus > (w.max_gpus ?? gpus)) {
      this.say(this.trans.__('Resize %1: choose a whole number of GPUs between %2 and %3.', w.name || w.id, w.min_gpus ?? '', w.max_gpus ?? ''), true);
      return;
    }
    await this.act(this.trans.__('Resize %1', w.name || w.id), async () => {
      await this.model.api.resize(w.id, gpus);
      this._resizeDrafts.delete(w.id);
      return this.trans.__('Asked to resize %1 to %2.', w.name || w.id, gpuCount(gpus));
    });
  }

  private async _cancel(w: IWorkload): Promise<void> {
    const trans = this.trans;
    const running = w.state === 'running';
    const what = w.name || w.id;
    const answer = await showDialog({
      title: running ? trans.__('Stop %1?', what) : trans.__('Cancel %1?', what),
      body: running
        ? trans.__('The job is stopped now and its %1 go back to the pool. Its output so far stays in its log.', gpuCount(w.allocation?.gpus ?? w.gpus))
        : trans.__('The job leaves the queue and will not start.'),
      buttons: [Dialog.cancelButton({ label: trans.__('Keep it') }), Dialog.warnButton({ label: running ? trans.__('Stop') : trans.__('Cancel job') })]
    });
    if (!answer.button.accept) {
      return;
    }
    await this.act(running ? trans.__('Stop %1', what) : trans.__('Cancel %1', what), async () => {
      await this.model.api.cancel(w.id);
      return running ? trans.__('Stopped %1; its GPUs go back to the pool.', what) : trans.__('Cancelled %1.', what);
    });
  }

  private readonly _resizeDrafts = new Map<string, string>();
  /** Jobs whose log is open, with the text read. */
  private readonly _logs = new Map<string, string>();
}

/** The body of the restart dialog: how many GPUs. */
class GpuChoice extends Widget {
  constructor(current: number, trans: TranslationBundle) {
    super();
    this.addClass('gp-GpuChoice');
    this._input = h('input', { type: 'number', name: 'gpus', min: 0, step: 'any', value: String(current), 'aria-label': trans.__('GPUs') }) as HTMLInputElement;
    this.node.append(
      h('label', { className: 'gp-Field' }, h('span', {}, trans.__('GPUs for the restarted server')), this._input),
      h('p', { className: 'gp-Muted' }, trans.__('The server stops and starts again with these GPUs; your files and home directory are kept, running kernels are not. If the pool has no room, the server waits in the queue.'))
    );
  }

  get gpus(): number | null {
    const n = Number(this._input.value);
    return this._input.value !== '' && n >= 0 && (n <= 1 || Number.isInteger(n)) ? n : null;
  }

  private readonly _input: HTMLInputElement;
}

/** Wait until this server has gone, then open the hub's page that follows its start and comes back here. */
async function followRestart(model: PoolModel): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    try {
      await model.api.me();
    } catch {
      break; // this server stopped
    }
    await new Promise(resolve => setTimeout(resolve, 1000));
  }
  // The pool asks the hub to start the server as soon as it has stopped.
  await new Promise(resolve => setTimeout(resolve, 2000));
  const hub = PageConfig.getOption('hubPrefix') || '/hub/';
  const user = PageConfig.getOption('hubUser') || model.me?.user || '';
  const server = PageConfig.getOption('hubServerName');
  window.location.href = `${hub}spawn-pending/${encodeURIComponent(user)}${server ? '/' + encodeURIComponent(server) : ''}`;
}

// ---------------------------------------------------------------- my team

/** My team's GPUs against its quota: what is guaranteed, what is borrowed, who waits. */
export class MyTeam extends Section {
  constructor(model: PoolModel, say: Say) {
    super(model, say, model.trans.__('My team'), 'gp-MyTeam');
    this.render();
  }

  render(): void {
    const teams = this.model.myTeams;
    if (!teams.length) {
      this.body.replaceChildren(h('p', { className: 'gp-Muted' }, this.model.me ? this.trans.__('You are in no team of the pool.') : ''));
      return;
    }
    this.body.replaceChildren(
      ...teams.map(t => {
        const scale = Math.max(t.quota, t.usage, t.limit ?? 0, 1);
        const within = Math.min(t.usage, t.quota);
        return h(
          'div',
          { className: 'gp-Team', 'data-team': t.name },
          h(
            'div',
            { className: 'gp-RowHead' },
            h('b', {}, t.name),
            h('span', { className: 'gp-TeamUse' }, this.trans.__('%1 of %2 quota in use', Math.round(t.usage * 100) / 100, gpuCount(t.quota) || '0 GPUs'))
          ),
          h(
            'span',
            { className: 'gp-QuotaBar', role: 'img', 'aria-label': this.trans.__('usage against quota') },
            h('span', { className: 'gp-Seg gp-mine', style: `width:${(100 * within) / scale}%` }),
            t.borrowed > 0 ? h('span', { className: 'gp-Seg gp-borrowed', style: `width:${(100 * t.borrowed) / scale}%` }) : null,
            h('span', { className: 'gp-QuotaMark', style: `left:${(100 * t.quota) / scale}%` })
          ),
          h(
            'div',
            { className: 'gp-Muted' },
            [
              t.borrowed > 0 ? this.trans.__('%1 borrowed (can be preempted)', gpuCount(t.borrowed)) : null,
              t.limit !== null ? this.trans.__('limit %1', gpuCount(t.limit)) : null,
              t.pending ? this.trans.__('%1 waiting', t.pending) : null
            ]
              .filter(Boolean)
              .join(' · ')
          )
        );
      })
    );
  }
}

// ---------------------------------------------------------------- the queue

/** The whole queue, mine highlighted, with how many wait ahead of my first workload. */
export class Queue extends Section {
  constructor(model: PoolModel, say: Say) {
    super(model, say, model.trans.__('Queue'), 'gp-Queue');
    this.render();
  }

  render(): void {
    const me = this.model.me?.user;
    const queue = this.model.queue;
    if (!queue.length) {
      this.body.replaceChildren(h('p', { className: 'gp-Muted' }, this.trans.__('Nobody is waiting.')));
      return;
    }
    const firstMine = queue.findIndex(q => q.user === me);
    const summary =
      firstMine < 0
        ? this.trans.__('%1 waiting; none of them yours.', queue.length)
        : this.trans.__('%1 ahead of your first workload, %2 waiting in all.', firstMine, queue.length);
    this.body.replaceChildren(
      h('div', { className: 'gp-Muted gp-QueueSummary' }, summary),
      h(
        'ol',
        { className: 'gp-QueueList' },
        queue.map(q =>
          h(
            'li',
            { className: q.user === me ? 'gp-QueueMine' : '', 'data-workload-id': q.id, 'data-mine': q.user === me ? 'true' : 'false' },
            h('b', {}, `#${q.queue_position ?? '?'}`),
            ` ${q.user === me ? q.name || q.id : q.id} · ${q.user} (${q.team}) · ${gpuCount(q.gpus)}`,
            q.expected_start ? h('span', { className: 'gp-Muted', title: q.expected_start_basis ?? '' }, ` · ${this.trans.__('expected %1 (an estimate)', untilText(q.expected_start) ?? '')}`) : null,
            q.reason ? h('div', { className: 'gp-Muted' }, q.reason) : null
          )
        )
      )
    );
  }
}

// ---------------------------------------------------------------- the pool

/** The pool: every GPU for a small pool; nodes as bars, open on demand, for a large one. */
export class Pool extends Section {
  constructor(model: PoolModel, say: Say) {
    super(model, say, model.trans.__('Pool'), 'gp-PoolSection');
    this._grid = h('div', { className: 'gp-Grid' });
    this.body.append(legend(), this._grid);
    this.render();
  }

  /** The GPU models in the pool, for the job form. */
  get models(): string[] {
    return [...new Set((this.model.pool?.nodes ?? []).flatMap(n => n.gpus.map(g => g.model)))].sort();
  }

  render(): void {
    const pool = this.model.pool;
    if (!pool) {
      this._grid.replaceChildren(h('p', { className: 'gp-Muted' }, this.model.error ? this.trans.__('Pool not available.') : this.trans.__('Loading the pool…')));
      return;
    }
    if (!pool.nodes.length) {
      this._grid.replaceChildren(h('p', { className: 'gp-Muted' }, this.trans.__('The pool has no nodes yet.')));
      return;
    }
    this.heading.replaceChildren(this.trans.__('Pool'), h('span', { className: 'gp-Muted gp-PoolTotals' }, ` ${poolSummary(pool)}`));
    this._grid.replaceChildren(
      ...poolGrid(pool, {
        me: this.model.me?.user,
        collapseAbove: this.model.settings.collapseAbove,
        expanded: this._expanded,
        onToggle: node => {
          if (!this._expanded.delete(node)) {
            this._expanded.add(node);
          }
          this.render();
        }
      })
    );
  }

  private readonly _grid: HTMLElement;
  private readonly _expanded = new Set<string>();
}

// ---------------------------------------------------------------- the job form

export class JobForm extends Section {
  constructor(model: PoolModel, say: Say) {
    super(model, say, model.trans.__('Submit a batch job'), 'gp-JobSection');
    this.body.append(this._form());
    this.render();
  }

  render(): void {
    const models = [...new Set((this.model.pool?.nodes ?? []).flatMap(n => n.gpus.map(g => g.model)))].sort();
    if (models.join('\n') !== this._models.dataset.models) {
      this._models.dataset.models = models.join('\n');
      this._models.replaceChildren(...models.map(m => h('option', { value: m })));
    }
  }

  private _form(): HTMLElement {
    const trans = this.trans;
    const field = (label: string, input: HTMLElement, hint?: string) =>
      h('label', { className: 'gp-Field' }, h('span', {}, label), input, hint ? h('small', { className: 'gp-Muted' }, hint) : null);
    const inputs = {
      name: h('input', { name: 'name', type: 'text', placeholder: 'train-resnet', required: true }) as HTMLInputElement,
      command: h('input', { name: 'command', type: 'text', placeholder: 'python train.py --epochs 10', required: true }) as HTMLInputElement,
      gpus: h('input', { name: 'gpus', type: 'number', min: 0.05, step: 'any', value: 1, required: true }) as HTMLInputElement,
      minGpus: h('input', { name: 'min_gpus', type: 'number', min: 1, step: 1, placeholder: 'min' }) as HTMLInputElement,
      maxGpus: h('input', { name: 'max_gpus', type: 'number', min: 1, step: 1, placeholder: 'max' }) as HTMLInputElement,
      model: h('input', { name: 'gpu_model', type: 'text', placeholder: trans.__('any model'), list: 'gp-gpu-models' }) as HTMLInputElement,
      time: h('input', { name: 'time_limit', type: 'text', placeholder: trans.__('team default') }) as HTMLInputElement
    };
    const form = h(
      'form',
      {
        className: 'gp-Form',
        onsubmit: (event: Event) => {
          event.preventDefault();
          void this._submit(inputs, form as HTMLFormElement);
        }
      },
      field(trans.__('Name'), inputs.name),
      field(trans.__('Command'), inputs.command, trans.__('runs in your home directory with the GPUs it is given')),
      field(trans.__('GPUs'), inputs.gpus, trans.__('a whole number, or a fraction below 1 to share a card')),
      h('div', { className: 'gp-Row2' }, field(trans.__('Elastic: min GPUs'), inputs.minGpus), field(trans.__('max GPUs'), inputs.maxGpus)),
      field(trans.__('GPU model'), inputs.model),
      this._models,
      field(trans.__('Time limit'), inputs.time, trans.__('e.g. 2h, 45m, 1h30m or 1:30:00; the pool stops the job there')),
      h('button', { type: 'submit', className: 'jp-mod-styled jp-mod-accept gp-Button', 'data-action': 'submit' }, trans.__('Submit job'))
    );
    return form;
  }

  private async _submit(inputs: Record<'name' | 'command' | 'gpus' | 'minGpus' | 'maxGpus' | 'model' | 'time', HTMLInputElement>, form: HTMLFormElement): Promise<void> {
    let job: IJobRequest;
    try {
      job = jobFrom(inputs);
    } catch (reason) {
      this.say(this.trans.__('Cannot submit: %1', describe(reason)), true);
      return;
    }
    await this.act(this.trans.__('Submitting %1', job.name), async () => {
      const w = await this.model.api.submit(job);
      form.reset();
      const where = w.state === 'running' ? this.trans.__('running now') : w.queue_position ? this.trans.__('queued at position %1', w.queue_position) : w.state;
      return this.trans.__('Submitted %1 (%2): %3.', w.name || w.id, w.id, where);
    });
  }

  /** The GPU models in the pool, offered in the job form. */
  private readonly _models = h('datalist', { id: 'gp-gpu-models' });
}

export function jobFrom(inputs: Record<'name' | 'command' | 'gpus' | 'minGpus' | 'maxGpus' | 'model' | 'time', HTMLInputElement>): IJobRequest {
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
  const time = inputs.time?.value.trim() ?? '';
  const request: IJobRequest = { name, command, gpus, min_gpus: min, max_gpus: max, gpu_model: inputs.model.value.trim() || null };
  if (time) {
    request.time_limit_s = parseDuration(time);
  }
  return request;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** "2h", "45m", "1d", "1h30m", "90s", "1:30:00" (h:mm:ss) or "30:00" (m:ss) as seconds: as `gpupool submit --time`. */
export function parseDuration(text: string): number {
  const t = text.trim().toLowerCase();
  let seconds = 0;
  if (t.includes(':')) {
    const parts = t.split(':');
    if (parts.length > 3 || !parts.every(p => /^\d+$/.test(p))) {
      throw new Error(`'${text}' is not a time limit (try 2h, 45m, 1d or 1:30:00)`);
    }
    seconds = parts.reduce((acc, p) => acc * 60 + Number(p), 0);
  } else {
    if (!/^(\d+(\.\d+)?\s*[smhd]\s*)+$/.test(t)) {
      const hint = /^\d+(\.\d+)?$/.test(t) ? ' (say the unit: 90m, 2h, 1d)' : ' (try 2h, 45m, 1d or 1:30:00)';
      throw new Error(`'${text}' is not a time limit${hint}`);
    }
    for (const m of t.matchAll(/(\d+(?:\.\d+)?)\s*([smhd])/g)) {
      seconds += Number(m[1]) * UNITS[m[2]];
    }
  }
  if (!(seconds > 0)) {
    throw new Error('a time limit must be more than 0');
  }
  return seconds;
}

// ---------------------------------------------------------------- events

export class Events extends Section {
  constructor(model: PoolModel, say: Say) {
    super(model, say, model.trans.__('What happened'), 'gp-EventsSection');
    this._list = h('ul', { className: 'gp-Events' });
    this.body.append(this._list);
    this.render();
  }

  render(): void {
    const events = this.model.events;
    this._list.replaceChildren(
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
        : [h('li', { className: 'gp-Muted' }, this.trans.__('Nothing has happened to your work yet.'))])
    );
  }

  private readonly _list: HTMLElement;
}
