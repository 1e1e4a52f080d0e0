import * as fs from 'node:fs';
import type { ExtensionContext, LogOutputChannel } from 'vscode';
import { registerCommands } from './commands';
import { CLIENT_NAME, CONFIG_SECTION, EXTENSION_COMMANDS } from './contributions';
import { resolvePython } from './python';
import type { ServerLaunch } from './server';
import { Session } from './session';
import { readSettings, type Settings } from './settings';
import { StatusController } from './status';
import { readTokens, SECRET_KEYS, type SecretStore } from './tokens';
import {
    createOutputChannel,
    createStatusBarItem,
    getConfiguration,
    homeDir,
    isWorkspaceTrusted,
    onDidChangeConfiguration,
    onDidGrantWorkspaceTrust,
    showWarning,
    workspaceFolderPaths,
} from './vscodeapi';

const RELOAD_DELAY_MS = 500;

let session: Session | undefined;

function loadSettings(): Settings {
    return readSettings(getConfiguration(CONFIG_SECTION));
}

/** How to start the language server now: settings, interpreter, tokens; run from `extensionDir`. */
async function loadLaunch(secrets: SecretStore, extensionDir: string): Promise<ServerLaunch> {
    const settings = loadSettings();
    const python = resolvePython({
        configured: settings.pythonPath,
        workspaceFolders: workspaceFolderPaths(),
        homeDir: homeDir(),
        platform: process.platform,
        exists: (file) => fs.existsSync(file),
        trusted: isWorkspaceTrusted(),
    });
    return { settings, python, cwd: extensionDir, tokens: await readTokens(secrets) };
}

export function activate(context: ExtensionContext): void {
    const secrets = context.secrets;
    const load = (): Promise<ServerLaunch> => loadLaunch(secrets, context.extensionPath);
    const output = createOutputChannel(CLIENT_NAME);
    const item = createStatusBarItem('prefloop.status', 'prefloop', EXTENSION_COMMANDS.showStatus);
    const status = new StatusController({
        fetch: () => current.fetchStatus(),
        render: (view) => {
            item.text = view.text;
            item.tooltip = view.tooltip;
        },
    });
    const current = new Session(output, status, load);
    session = current;
    item.show();
    status.poll(loadSettings().statusIntervalSeconds);

    let reloadTimer: ReturnType<typeof setTimeout> | undefined;
    const watcher = onDidChangeConfiguration((event) => {
        if (!event.affectsConfiguration(CONFIG_SECTION)) {
            return;
        }
        clearTimeout(reloadTimer);
        reloadTimer = setTimeout(() => {
            status.poll(loadSettings().statusIntervalSeconds);
            void current.reload();
        }, RELOAD_DELAY_MS);
    });

    const tokenWatcher = secrets.onDidChange((event) => {
        if (Object.values(SECRET_KEYS).includes(event.key)) {
            void current.reload();
        }
    });
    const trustWatcher = onDidGrantWorkspaceTrust(() => void current.reload());

    context.subscriptions.push(
        output,
        item,
        status,
        watcher,
        tokenWatcher,
        trustWatcher,
        ...registerCommands({ session: current, status, output, secrets }),
        {
            dispose: () => clearTimeout(reloadTimer),
        },
    );
    void current.start();
    warnOfTokenInSettings(output);
}

/** A token left in settings.json by an earlier version is not read: say where it goes now. */
function warnOfTokenInSettings(output: LogOutputChannel): void {
    const left = getConfiguration(CONFIG_SECTION).get('token');
    if (typeof left === 'string' && left.trim() !== '') {
        const message =
            'prefloop no longer reads "prefloop.token" from settings: run "prefloop: Set Token" ' +
            '(kept in secret storage) and delete it from settings.json.';
        output.warn(message);
        void showWarning(message);
    }
}

export async function deactivate(): Promise<void> {
    const stopping = session?.stop();
    session = undefined;
    await stopping;
}
