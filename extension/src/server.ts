import type { LogOutputChannel } from 'vscode';
import {
    ExecuteCommandRequest,
    LanguageClient,
    RevealOutputChannelOn,
    type Executable,
    type LanguageClientOptions,
} from 'vscode-languageclient/node';
import { CLIENT_ID, CLIENT_NAME } from './contributions';
import type { LspCommand } from './protocol';
import { serverCommand } from './python';
import { documentSelector, toInitializationOptions, type Settings } from './settings';
import { serverEnvironment, type Tokens } from './tokens';

export interface ServerLaunch {
    settings: Settings;
    python: string;
    /** Working directory of the language server: the extension's own directory, never a workspace. */
    cwd: string;
    /** The tokens from SecretStorage, passed in the language server's environment. */
    tokens: Tokens;
}

/**
 * Builds the language client that runs `<python> -I -m prefloop lsp` over stdio.
 * `onServerCommand` is called after VS Code ran one of the server's commands through
 * the client, such as `prefloop.accept` when the user accepts a suggestion.
 */
export function createClient(
    launch: ServerLaunch,
    output: LogOutputChannel,
    onServerCommand: (command: string) => void,
): LanguageClient {
    const { command, args } = serverCommand(launch.python);
    const executable: Executable = {
        command,
        args,
        options: {
            env: serverEnvironment(process.env, launch.tokens),
            cwd: launch.cwd,
        },
    };
    const clientOptions: LanguageClientOptions = {
        documentSelector: documentSelector(launch.settings.enabledLanguages),
        initializationOptions: toInitializationOptions(launch.settings),
        outputChannel: output,
        revealOutputChannelOn: RevealOutputChannelOn.Never,
        middleware: {
            executeCommand: async (name, commandArgs, next) => {
                try {
                    return await next(name, commandArgs);
                } finally {
                    onServerCommand(name);
                }
            },
        },
    };
    return new LanguageClient(CLIENT_ID, CLIENT_NAME, { run: executable, debug: executable }, clientOptions);
}

/** Sends `workspace/executeCommand` for one of the language server's commands. */
export async function executeServerCommand(
    client: LanguageClient,
    command: LspCommand,
    args: readonly unknown[] = [],
): Promise<unknown> {
    const result: unknown = await client.sendRequest(ExecuteCommandRequest.type, {
        command,
        arguments: [...args],
    });
    return result;
}
