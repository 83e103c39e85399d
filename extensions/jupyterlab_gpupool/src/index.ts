/**
 * jupyterlab-gpupool: the GPU pool panel and status bar item.
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import { PoolApi } from './api';
import { IPoolSettings, PoolModel } from './model';
import { PoolPanel } from './panel';
import { GpuStatus } from './statusbar';

const gpuIcon = new LabIcon({
  name: 'gpupool:gpu',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<path d="M3 7h16a2 2 0 0 1 2 2v7a2 2 0 0 1-2 2H9v2H7v-2H5v2H3zm4 3a2 2 0 1 0 0 4a2 2 0 0 0 0-4zm7 0a2 2 0 1 0 0 4a2 2 0 0 0 0-4z"/>' +
    '</g></svg>'
});

const OPEN_COMMAND = 'gpupool:open';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-gpupool:plugin',
  description: 'GPU pool panel and status bar item for jupyterhub-gpupool.',
  autoStart: true,
  requires: [ILabShell],
  optional: [IStatusBar, ICommandPalette, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyterlab_gpupool');
    const model = new PoolModel(new PoolApi(), trans);
    const panel = new PoolPanel(model);
    panel.title.icon = gpuIcon;
    shell.add(panel, 'right', { rank: 50 });

    app.commands.addCommand(OPEN_COMMAND, {
      label: trans.__('Show the GPU pool'),
      execute: () => shell.activateById(panel.id)
    });
    palette?.addItem({ command: OPEN_COMMAND, category: 'GPU pool' });

    if (statusBar) {
      statusBar.registerStatusItem('jupyterlab-gpupool:status', {
        item: new GpuStatus(model, () => void app.commands.execute(OPEN_COMMAND)),
        align: 'left',
        rank: 50
      });
    }
    if (settingRegistry) {
      // The panel starts with the defaults; the user's settings apply as soon as they are read, and on every change.
      settingRegistry
        .load(plugin.id)
        .then(settings => {
          const apply = () => model.configure(settings.composite as unknown as Partial<IPoolSettings>);
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason => console.warn('jupyterlab-gpupool: settings not read, using the defaults', reason));
    }
    model.start();
  }
};

export default plugin;
