/**
 * nbdistill's JupyterLab extension: the "Distillation runs" sidebar, a viewer per run, and
 * launcher / command-palette entries that copy a tutorial into the working folder and open it.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker, showErrorMessage } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';

import { Tutorial, api } from './api';
import { distillIcon } from './icons';
import { RunsSidebar } from './sidebar';
import { RunViewer } from './viewer';

export const CommandIDs = {
  showRuns: 'nbdistill:show-runs',
  openRun: 'nbdistill:open-run',
  openTutorial: 'nbdistill:open-tutorial'
};

const CATEGORY = 'nbdistill';
/** Set once the sidebar has been shown on a first visit (so Binder users see it at once). */
const INTRODUCED_KEY = 'nbdistill:sidebar-introduced';

function activate(
  app: JupyterFrontEnd,
  restorer: ILayoutRestorer | null,
  launcher: ILauncher | null,
  palette: ICommandPalette | null,
  browser: IDefaultFileBrowser | null
): void {
  const { commands, shell } = app;
  let tutorials: Tutorial[] = [];

  const sidebar = new RunsSidebar({
    open: id => void commands.execute(CommandIDs.openRun, { id }),
    openTour: () => {
      if (tutorials.length) {
        void commands.execute(CommandIDs.openTutorial, { ...tutorials[0] });
      }
    }
  });
  shell.add(sidebar, 'left', { rank: 650 });
  restorer?.add(sidebar, sidebar.id);

  const tracker = new WidgetTracker<MainAreaWidget<RunViewer>>({ namespace: 'nbdistill-run' });

  commands.addCommand(CommandIDs.showRuns, {
    label: 'nbdistill: show distillation runs',
    caption: 'Show the sidebar of distillation runs',
    icon: distillIcon,
    execute: () => shell.activateById(sidebar.id)
  });

  commands.addCommand(CommandIDs.openRun, {
    label: args => (args.id ? `nbdistill: open run ${args.id}` : 'nbdistill: open run'),
    caption: 'Open the live charts of a distillation run',
    icon: distillIcon,
    execute: async args => {
      const id = String(args.id ?? '');
      const existing = tracker.find(widget => widget.content.runId === id);
      if (existing) {
        shell.activateById(existing.id);
        return existing;
      }
      const widget = new MainAreaWidget({ content: new RunViewer(id) });
      widget.id = `nbdistill-viewer-${id}`;
      widget.addClass('jp-nbdistill-viewer-panel');
      shell.add(widget, 'main');
      await tracker.add(widget);
      shell.activateById(widget.id);
      return widget;
    }
  });

  commands.addCommand(CommandIDs.openTutorial, {
    label: args =>
      args.origin === 'palette'
        ? `nbdistill: open tutorial ${args.title ?? args.name}`
        : String(args.title ?? args.name ?? 'nbdistill tutorial'),
    caption: args => `Copy ${args.file ?? 'the tutorial'} into the current folder (kept if it is already there) and open it`,
    icon: args => (args.origin === 'palette' ? undefined : distillIcon),
    execute: async args => {
      const dir = typeof args.cwd === 'string' ? args.cwd : (browser?.model.path ?? '');
      try {
        const { path } = await api.copyTutorial(String(args.name), dir);
        return await commands.execute('docmanager:open', { path });
      } catch (error) {
        void showErrorMessage('Cannot open the nbdistill tutorial', error as Error);
      }
    }
  });

  palette?.addItem({ command: CommandIDs.showRuns, category: CATEGORY });

  restorer?.restore(tracker, {
    command: CommandIDs.openRun,
    args: widget => ({ id: widget.content.runId }),
    name: widget => widget.content.runId
  });

  api
    .tutorials()
    .then(list => {
      tutorials = list;
      list.forEach((tutorial, rank) => {
        launcher?.add({ command: CommandIDs.openTutorial, args: { ...tutorial, origin: 'launcher' }, category: CATEGORY, rank });
        palette?.addItem({ command: CommandIDs.openTutorial, args: { ...tutorial, origin: 'palette' }, category: CATEGORY, rank });
      });
    })
    .catch(error => console.warn('nbdistill: cannot list the tutorials', error));

  void app.restored.then(() => {
    if (!window.localStorage.getItem(INTRODUCED_KEY)) {
      window.localStorage.setItem(INTRODUCED_KEY, '1');
      shell.activateById(sidebar.id);
    }
  });
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbdistill:plugin',
  description: 'A live sidebar of distillation runs, a viewer per run and the nbdistill tutorials.',
  autoStart: true,
  optional: [ILayoutRestorer, ILauncher, ICommandPalette, IDefaultFileBrowser],
  activate
};

export default plugin;
