import type { Disposable, LogOutputChannel } from 'vscode';
import { EXTENSION_COMMANDS, HIDE_INLINE_SUGGESTION, type ExtensionCommand } from './contributions';
import { LSP_COMMANDS, parseEnabled, parseRetrain, type DismissArgs } from './protocol';
import type { Session } from './session';
import { describeStatus, type StatusController } from './status';
import { cleanToken, storeToken, TOKEN_LABELS, type SecretStore, type TokenKind } from './tokens';
import {
    activeDocumentUri,
    askSecret,
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
    /** Where the tokens are kept; a change restarts the language server. */
    secrets: SecretStore;
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

const TOKEN_PROMPTS: Record<TokenKind, string> = {
    token: 'Your prefloop token (from `prefloop users add NAME`), sent with every request to the service.',
    adminToken: "An admin's prefloop token, sent only when you Trigger Retrain.",
};

/** Asks for a token and keeps it in SecretStorage; an empty answer clears it. */
async function setToken(context: CommandContext, kind: TokenKind): Promise<void> {
    const label = TOKEN_LABELS[kind];
    const value = await askSecret(`prefloop: Set ${label}`, TOKEN_PROMPTS[kind]);
    if (value === undefined) {
        return;
    }
    if (value.trim() !== '' && cleanToken(value) === undefined) {
        throw new Error(`not saved: a ${label} is one word without spaces (pfl_…)`);
    }
    await storeToken(context.secrets, kind, value);
    const cleared = value.trim() === '';
    context.output.info(`${label} ${cleared ? 'cleared' : 'set'}`);
    void showInformation(
        `prefloop: ${label} ${cleared ? 'cleared' : 'saved; the language server restarts with it'}.`,
    );
}

async function clearToken(context: CommandContext, kind: TokenKind): Promise<void> {
    await storeToken(context.secrets, kind, undefined);
    context.output.info(`${TOKEN_LABELS[kind]} cleared`);
    void showInformation(`prefloop: ${TOKEN_LABELS[kind]} cleared.`);
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
        [EXTENSION_COMMANDS.setToken]: () => setToken(context, 'token'),
        [EXTENSION_COMMANDS.clearToken]: () => clearToken(context, 'token'),
        [EXTENSION_COMMANDS.setAdminToken]: () => setToken(context, 'adminToken'),
        [EXTENSION_COMMANDS.clearAdminToken]: () => clearToken(context, 'adminToken'),
    };
    return Object.entries(handlers).map(([name, handler]) =>
        registerCommand(name, guarded(context, name, handler)),
    );
}
