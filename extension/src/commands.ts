import type { Disposable, LogOutputChannel } from 'vscode';
import { EXTENSION_COMMANDS, HIDE_INLINE_SUGGESTION, type ExtensionCommand } from './contributions';
import { LSP_COMMANDS, parseEnabled, parseRetrain, type DismissArgs } from './protocol';
import type { Session } from './session';
import { describeStatus, type StatusController } from './status';
import {
    activeDocumentUri,
    executeCommand,
    registerCommand,
    showInformation,
    showWarning,
} from './vscodeapi';

const SHOW_LOG = 'Show Log';

export interface CommandContext {
    session: Session;
    status: StatusController;
    output: LogOutputChannel;
}

function errorMessage(error: unknown): string {
    return error instanceof Error ? error.message : String(error);
}

/** Runs a command handler; a failure is logged and shown with a way to the log. */
function guarded(context: CommandContext, name: string, handler: () => Promise<void>): () => Promise<void> {
    return async () => {
        try {
            await handler();
        } catch (error) {
            const message = errorMessage(error);
            context.output.error(`${name}: ${message}`);
            const choice = await showWarning(`prefloop: ${message}`, SHOW_LOG);
            if (choice === SHOW_LOG) {
                context.output.show(true);
            }
        }
    };
}

async function toggle(context: CommandContext): Promise<void> {
    const result = await context.session.execute(LSP_COMMANDS.toggle);
    const status = await context.status.refresh();
    const enabled = parseEnabled(result) ?? status?.enabled;
    if (enabled !== undefined) {
        void showInformation(`prefloop suggestions are ${enabled ? 'on' : 'off'}.`);
    }
}

async function retrain(context: CommandContext): Promise<void> {
    const result = parseRetrain(await context.session.execute(LSP_COMMANDS.retrain));
    if (!result.ok) {
        throw new Error(result.message);
    }
    void showInformation(`prefloop: ${result.message}`);
}

async function showStatus(context: CommandContext): Promise<void> {
    const status = await context.status.refresh();
    if (status === undefined) {
        const state = context.status.clientState;
        throw new Error(
            state === 'running' ? 'the language server gave no status' : `the language server is ${state}`,
        );
    }
    const choice = await showInformation(
        describeStatus(status).split('\n').join(' · '),
        'Toggle Suggestions',
        SHOW_LOG,
    );
    if (choice === SHOW_LOG) {
        context.output.show(true);
    } else if (choice !== undefined) {
        await toggle(context);
    }
}

/** Escape while a suggestion is visible: hide it, then report the dismissal. */
async function dismissVisible(context: CommandContext): Promise<void> {
    await executeCommand(HIDE_INLINE_SUGGESTION);
    const uri = activeDocumentUri();
    if (uri === undefined) {
        return;
    }
    const args: DismissArgs = [uri];
    try {
        await context.session.execute(LSP_COMMANDS.dismiss, args);
    } catch (error) {
        context.output.warn(`dismiss not reported: ${errorMessage(error)}`);
    }
}

export function registerCommands(context: CommandContext): Disposable[] {
    const handlers: Record<ExtensionCommand, () => Promise<void>> = {
        [EXTENSION_COMMANDS.toggle]: () => toggle(context),
        [EXTENSION_COMMANDS.retrain]: () => retrain(context),
        [EXTENSION_COMMANDS.showStatus]: () => showStatus(context),
        [EXTENSION_COMMANDS.showLog]: async () => context.output.show(true),
        [EXTENSION_COMMANDS.dismissVisible]: () => dismissVisible(context),
    };
    return Object.entries(handlers).map(([name, handler]) =>
        registerCommand(name, guarded(context, name, handler)),
    );
}
