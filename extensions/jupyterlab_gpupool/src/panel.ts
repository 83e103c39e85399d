/**
 * The GPU pool side panel, built from small widgets (./widgets): my work
 * first, then my team against its quota, the queue, the pool, the job form
 * and what happened. Reclaim warnings and the pool's errors sit on top.
 */
import { Panel, Widget } from '@lumino/widgets';

import { duration, gpuCount, h } from './kit';
import { PoolModel } from './model';
import { Events, JobForm, MyTeam, MyWork, Pool, Queue } from './widgets';

/** The header: who I am, when the panel last heard from the pool, its errors, the notice line, reclaim warnings. */
class Header extends Widget {
  constructor(private readonly model: PoolModel) {
    super();
    this.addClass('gp-HeaderBox');
    this.node.append(
      h('header', { className: 'gp-Header' }, h('h2', {}, model.trans.__('GPU pool')), this._whoami, this._refreshed),
      this._error,
      this.notice,
      this._warnings
    );
    model.changed.connect(this.render, this);
    this.render();
  }

  dispose(): void {
    this.model.changed.disconnect(this.render, this);
    super.dispose();
  }

  say(text: string, isError: boolean): void {
    this.notice.className = isError ? 'gp-Notice gp-NoticeError' : 'gp-Notice';
    this.notice.textContent = text;
    this.notice.hidden = false;
  }

  render(): void {
    const m = this.model;
    const trans = m.trans;
    this._whoami.textContent = m.me ? `${m.me.user} · ${trans.__('team')} ${m.me.teams.join(', ') || trans.__('(none)')}` : '';
    this._refreshed.textContent = m.refreshedAt
      ? trans.__('updated %1', m.refreshedAt.toLocaleTimeString())
      : m.error
        ? trans.__('not updated')
        : trans.__('loading…');
    this._error.replaceChildren(...(m.error ? [h('strong', {}, trans.__('The GPU pool reported a problem: ')), m.error] : []));
    this._error.hidden = !m.error;
    const warnings = m.reclaimWarnings;
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
          h('strong', {}, trans.__('Idle GPUs will be reclaimed: ')),
          trans.__('%1 holds %2 without using them. ', workload.name || workload.id, gpuCount(workload.allocation?.gpus ?? workload.gpus)),
          secondsLeft === null
            ? trans.__('They go back to the pool as soon as someone is waiting for GPUs, unless you use them.')
            : secondsLeft > 0
              ? trans.__('They go back to the pool in %1 unless you use them.', duration(secondsLeft))
              : trans.__('They are being returned to the pool now.'),
          h('div', { className: 'gp-Muted' }, message)
        )
      )
    );
  }

  readonly notice = h('div', { className: 'gp-Notice', role: 'status', hidden: true });
  private readonly _whoami = h('div', { className: 'gp-Muted gp-Whoami' });
  private readonly _refreshed = h('div', { className: 'gp-Muted gp-Refreshed' });
  private readonly _error = h('div', { className: 'gp-Error', role: 'alert', hidden: true });
  private readonly _warnings = h('div', { className: 'gp-Warnings', hidden: true });
}

export class PoolPanel extends Panel {
  constructor(readonly model: PoolModel) {
    super();
    this.id = 'gpupool-panel';
    this.addClass('gp-Panel');
    this.title.caption = model.trans.__('GPU pool');
    const header = new Header(model);
    const say = (text: string, isError: boolean) => header.say(text, isError);
    this.addWidget(header);
    for (const Section of [MyWork, MyTeam, Queue, Pool, JobForm, Events]) {
      this.addWidget(new Section(model, say));
    }
  }
}
