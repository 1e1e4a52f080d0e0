import type { Disposable, LogOutputChannel } from 'vscode';
import { State, type LanguageClient } from 'vscode-languageclient/node';
import { LSP_COMMANDS, parseStatus, type LspCommand, type StatusResult } from './protocol';
import { createClient, executeServerCommand, type ServerLaunch } from './server';
import { needsRestart } from './settings';
import { tokensChanged } from './tokens';
import type { ClientState, StatusController } from './status';

const STOP_TIMEOUT_MS = 4000;

export class NotRunningError extends Error {
    constructor() {
        super('the prefloop language server is not running');
    }
}

function clientState(state: State): ClientState {
    switch (state) {
        case State.Running:
            return 'running';
        case State.Starting:
            return 'starting';
        default:
            return 'stopped';
    }
}

/** One language client at a time: started, restarted on settings changes, stopped. */
export class Session {
    private client: LanguageClient | undefined;
    private stateListener: Disposable | undefined;
    private launch: ServerLaunch | undefined;
    private queue: Promise<void> = Promise.resolve();

    constructor(
        private readonly output: LogOutputChannel,
        private readonly status: StatusController,
        private readonly load: () => Promise<ServerLaunch>,
    ) {}

    start(): Promise<void> {
        return this.enqueue(() => this.startNow());
    }

    stop(): Promise<void> {
        return this.enqueue(() => this.stopNow());
    }

    /** Restarts the language server when the settings or tokens it was started with changed. */
    reload(): Promise<void> {
        return this.enqueue(async () => {
            const next = await this.load();
            if (
                this.launch !== undefined &&
                this.launch.python === next.python &&
                !needsRestart(this.launch.settings, next.settings) &&
                !tokensChanged(this.launch.tokens, next.tokens)
            ) {
                return;
            }
            this.output.info('settings or tokens changed: restarting the language server');
            await this.stopNow();
            await this.startNow(next);
        });
    }

    async execute(command: LspCommand, args: readonly unknown[] = []): Promise<unknown> {
        const client = this.client;
        if (client === undefined || !client.isRunning()) {
            throw new NotRunningError();
        }
        return executeServerCommand(client, command, args);
    }

    async fetchStatus(): Promise<StatusResult | undefined> {
        return parseStatus(await this.execute(LSP_COMMANDS.status));
    }

    private enqueue(step: () => Promise<void>): Promise<void> {
        this.queue = this.queue.then(step, step);
        return this.queue;
    }

    private async startNow(next?: ServerLaunch): Promise<void> {
        const launch = next ?? (await this.load());
        this.launch = launch;
        const client = createClient(launch, this.output, (command) => {
            if (command === LSP_COMMANDS.accept) {
                void this.status.refresh();
            }
        });
        this.client = client;
        this.stateListener = client.onDidChangeState((event) => {
            const state = clientState(event.newState);
            this.output.info(`language server ${state}`);
            this.status.setClientState(state);
        });
        const tokens = Object.keys(launch.tokens).join(', ') || 'none';
        this.output.info(
            `starting the language server: ${launch.python} -I -m prefloop lsp (tokens set: ${tokens})`,
        );
        try {
            await client.start();
        } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            this.output.error(`the language server did not start: ${message}`);
            this.status.setClientState('stopped');
        }
    }

    private async stopNow(): Promise<void> {
        const client = this.client;
        this.client = undefined;
        this.launch = undefined;
        this.stateListener?.dispose();
        this.stateListener = undefined;
        if (client === undefined || !client.needsStop()) {
            this.status.setClientState('stopped');
            return;
        }
        try {
            await client.dispose(STOP_TIMEOUT_MS);
        } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            this.output.warn(`stopping the language server: ${message}`);
        }
        this.status.setClientState('stopped');
    }
}
