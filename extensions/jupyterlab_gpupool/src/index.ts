/**
 * jupyterlab-gpupool: the GPU pool panel and status bar item.
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IStatusBar } from '@jupyterlab/statusbar';
import { LabIcon } from '@jupyterlab/ui-components';

import { PoolModel } from './model';
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
  optional: [IStatusBar, ICommandPalette],
  activate: (app: JupyterFrontEnd, shell: ILabShell, statusBar: IStatusBar | null, palette: ICommandPalette | null) => {
    const model = new PoolModel();
    const panel = new PoolPanel(model);
    panel.title.icon = gpuIcon;
    shell.add(panel, 'right', { rank: 50 });

    app.commands.addCommand(OPEN_COMMAND, {
      label: 'Show the GPU pool',
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
    model.start();
  }
};

export default plugin;
