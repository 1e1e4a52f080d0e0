import type { StatusResult } from './protocol';

/** Where the language client is: its own state, independent of the service behind it. */
export type ClientState = 'starting' | 'running' | 'stopped';

export interface StatusView {
    text: string;
    tooltip: string;
}

export function formatRate(rate: number | null): string {
    return rate === null ? 'no suggestions shown yet' : `${Math.round(rate * 100)}%`;
}

/**
 * What the status bar item shows for a client state, the last status result and the
 * error of the last status request, if it failed.
 */
export function formatStatus(
    client: ClientState,
    status: StatusResult | undefined,
    error?: string,
): StatusView {
    if (client === 'stopped') {
        return {
            text: '$(error) prefloop',
            tooltip: 'prefloop: the language server is not running. Click for details.',
        };
    }
    if (client === 'running' && status === undefined && error !== undefined) {
        return {
            text: '$(warning) prefloop',
            tooltip: `prefloop: no status from the language server (${error})`,
        };
    }
    if (client === 'starting' || status === undefined) {
        return { text: '$(sync~spin) prefloop', tooltip: 'prefloop: starting the language server…' };
    }
    const tooltip = describeStatus(status);
    if (!status.enabled) {
        return { text: '$(circle-slash) prefloop: off', tooltip };
    }
    if (!status.connected) {
        return { text: '$(debug-disconnect) prefloop: offline', tooltip };
    }
    if (status.authError !== null) {
        return { text: '$(key) prefloop: token refused', tooltip };
    }
    const version = status.modelVersion ?? 'unknown model';
    const rate = status.acceptanceRate === null ? '' : ` ${formatRate(status.acceptanceRate)}`;
    return { text: `$(check) prefloop ${version}${rate}`, tooltip };
}

/** Several lines describing a status result, for the tooltip and "Show Status". */
export function describeStatus(status: StatusResult): string {
    const connection = status.connected ? 'connected' : 'not reachable';
    return [
        `prefloop suggestions: ${status.enabled ? 'on' : 'off'}`,
        `Service: ${status.serverUrl || 'unknown'} (${connection})`,
        `Model version: ${status.modelVersion ?? 'unknown'}`,
        `Accepted today: ${formatRate(status.acceptanceRate)}`,
        ...(status.authError === null ? [] : [`Token: ${status.authError}`]),
    ].join('\n');
}

export interface StatusSource {
    /** The current status; rejects when the language server cannot answer. */
    fetch(): Promise<StatusResult | undefined>;
    /** Shows a view (the status bar item). */
    render(view: StatusView): void;
}

/** Keeps the status bar item current: on client state changes, on demand and periodically. */
export class StatusController {
    private client: ClientState = 'starting';
    private last: StatusResult | undefined;
    private error: string | undefined;
    private generation = 0;
    private timer: ReturnType<typeof setInterval> | undefined;

    constructor(private readonly source: StatusSource) {
        this.render();
    }

    get current(): StatusResult | undefined {
        return this.last;
    }

    get clientState(): ClientState {
        return this.client;
    }

    setClientState(state: ClientState): void {
        this.client = state;
        if (state !== 'running') {
            this.last = undefined;
            this.error = undefined;
            this.generation += 1;
        }
        this.render();
        if (state === 'running') {
            void this.refresh();
        }
    }

    /** Asks the language server for its status; a newer call wins over an older one. */
    async refresh(): Promise<StatusResult | undefined> {
        if (this.client !== 'running') {
            return undefined;
        }
        const generation = ++this.generation;
        let status: StatusResult | undefined;
        let error: string | undefined;
        try {
            status = await this.source.fetch();
            error = status === undefined ? 'unexpected answer' : undefined;
        } catch (failure) {
            error = failure instanceof Error ? failure.message : String(failure);
        }
        if (generation === this.generation && this.client === 'running') {
            this.last = status ?? this.last;
            this.error = error;
            this.render();
        }
        return status;
    }

    /** Refreshes every `seconds` until disposed or called again. */
    poll(seconds: number): void {
        this.stopPolling();
        this.timer = setInterval(() => void this.refresh(), seconds * 1000);
    }

    dispose(): void {
        this.stopPolling();
        this.generation += 1;
    }

    private render(): void {
        this.source.render(formatStatus(this.client, this.last, this.error));
    }

    private stopPolling(): void {
        if (this.timer !== undefined) {
            clearInterval(this.timer);
            this.timer = undefined;
        }
    }
}
