import * as fs from 'node:fs';
import type { ExtensionContext } from 'vscode';
import { registerCommands } from './commands';
import { CLIENT_NAME, CONFIG_SECTION, EXTENSION_COMMANDS } from './contributions';
import { resolvePython } from './python';
import type { ServerLaunch } from './server';
import { Session } from './session';
import { readSettings } from './settings';
import { StatusController } from './status';
import {
    createOutputChannel,
    createStatusBarItem,
    getConfiguration,
    homeDir,
    onDidChangeConfiguration,
    workspaceFolderPaths,
} from './vscodeapi';

const RELOAD_DELAY_MS = 500;

let session: Session | undefined;

function loadLaunch(): ServerLaunch {
    const settings = readSettings(getConfiguration(CONFIG_SECTION));
    const folders = workspaceFolderPaths();
    const python = resolvePython({
        configured: settings.pythonPath,
        workspaceFolders: folders,
        homeDir: homeDir(),
        platform: process.platform,
        exists: (file) => fs.existsSync(file),
    });
    return { settings, python, cwd: folders[0] };
}

export function activate(context: ExtensionContext): void {
    const output = createOutputChannel(CLIENT_NAME);
    const item = createStatusBarItem('prefloop.status', 'prefloop', EXTENSION_COMMANDS.showStatus);
    const status = new StatusController({
        fetch: () => current.fetchStatus(),
        render: (view) => {
            item.text = view.text;
            item.tooltip = view.tooltip;
        },
    });
    const current = new Session(output, status, loadLaunch);
    session = current;
    item.show();
    status.poll(loadLaunch().settings.statusIntervalSeconds);

    let reloadTimer: ReturnType<typeof setTimeout> | undefined;
    const watcher = onDidChangeConfiguration((event) => {
        if (!event.affectsConfiguration(CONFIG_SECTION)) {
            return;
        }
        clearTimeout(reloadTimer);
        reloadTimer = setTimeout(() => {
            status.poll(loadLaunch().settings.statusIntervalSeconds);
            void current.reload();
        }, RELOAD_DELAY_MS);
    });

    context.subscriptions.push(
        output,
        item,
        status,
        watcher,
        ...registerCommands({ session: current, status, output }),
        {
            dispose: () => clearTimeout(reloadTimer),
        },
    );
    void current.start();
}

export async function deactivate(): Promise<void> {
    const stopping = session?.stop();
    session = undefined;
    await stopping;
}
