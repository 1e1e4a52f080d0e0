/**
 * The parts of prefloop's wire protocol that the extension uses, mirrored from
 * `prefloop/protocol.py`; `tests/test_protocol_mirror.py` fails when the two drift.
 *
 * Directions:
 * - extension → language server: `initialize` with {@link InitializationOptions}.
 * - extension → language server: `workspace/executeCommand` with one of
 *   {@link LSP_COMMANDS}. VS Code also runs `prefloop.accept` itself when the user
 *   accepts an inline item that carries it; the language client forwards it.
 * - language server → extension: the command results typed below.
 * The extension never talks HTTP to the service; the language server does.
 */

export const EVENT_KINDS = [
    'shown',
    'accepted',
    'partially_accepted',
    'dismissed',
    'retained',
    'rewritten',
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export const DISMISS_REASONS = [
    'typed_over',
    'moved_away',
    'escaped',
    'closed',
    'replaced_by_newer',
] as const;
export type DismissReason = (typeof DISMISS_REASONS)[number];

export const CHECKPOINTS = ['30s', '2m', '5m', '10m', 'save', 'close'] as const;
export type Checkpoint = (typeof CHECKPOINTS)[number];

/** Checkpoints taken after a delay (the others are taken on save and on close). */
export const TIMED_CHECKPOINTS = ['30s', '2m', '5m', '10m'] as const satisfies readonly Checkpoint[];
export type TimedCheckpoint = (typeof TIMED_CHECKPOINTS)[number];
export type CheckpointSeconds = Record<TimedCheckpoint, number>;

export const DEFAULT_CHECKPOINT_SECONDS: Readonly<CheckpointSeconds> = {
    '30s': 30,
    '2m': 120,
    '5m': 300,
    '10m': 600,
};

export const MODES = ['single_line', 'multi_line'] as const;
export type Mode = (typeof MODES)[number];

/** Commands the language server lists in `executeCommandProvider.commands`. */
export const LSP_COMMANDS = {
    accept: 'prefloop.accept',
    dismiss: 'prefloop.dismiss',
    toggle: 'prefloop.toggle',
    retrain: 'prefloop.retrain',
    status: 'prefloop.status',
} as const;
export type LspCommand = (typeof LSP_COMMANDS)[keyof typeof LSP_COMMANDS];

/**
 * `initialize` params' `initializationOptions`, extension → language server. The tokens
 * are not among them: they go in the language server's environment (see `tokens.ts`).
 */
export interface InitializationOptions {
    serverUrl: string;
    /** Seconds the language server waits after a keystroke before asking. */
    debounce: number;
    mode: Mode;
    /** Delays of the `30s`, `2m`, `5m` and `10m` retention snapshots, in seconds. */
    retentionCheckpoints: [number, number, number, number];
}

/**
 * Arguments of `prefloop.dismiss`, sent when Escape hides a visible suggestion: the
 * document it was shown in. The language server records a `dismissed` event with the
 * reason `escaped`.
 */
export type DismissArgs = [uri: string];

/** `today` of a {@link StatusAnswer}: the current local day's suggestions. */
export interface TodayCounts {
    /** The day, ISO format. */
    date: string;
    shown: number;
    accepted: number;
    partiallyAccepted: number;
    dismissed: number;
    /** accepted / shown, 0..1; null before anything was shown. */
    acceptanceRate: number | null;
}

/** Result of `prefloop.status`, language server → extension (`StatusAnswer` in Python). */
export interface StatusAnswer {
    /** The last request to the service was answered. */
    connected: boolean;
    state: 'unknown' | 'connected' | 'unreachable';
    serverUrl: string;
    /** The version the service last served. */
    modelVersion: string | null;
    /** The `status` of the service's `/healthz`. */
    serviceStatus: string | null;
    lastError: string | null;
    /** Why the service refuses the language server's token (401 or 403); null while it takes it. */
    authError: string | null;
    /** Suggestions are on (`prefloop.toggle`). */
    enabled: boolean;
    today: TodayCounts;
    /** Events waiting on disk for the service; null before `initialize`. */
    spooledEvents: number | null;
    /** The language server's prefloop version. */
    version: string;
}

/** What the extension shows of a {@link StatusAnswer}. */
export interface StatusResult {
    connected: boolean;
    serverUrl: string;
    modelVersion: string | null;
    /** Today's accepted / shown suggestions, 0..1; null before anything was shown. */
    acceptanceRate: number | null;
    enabled: boolean;
    /** Why the service refuses the token; null while it takes it. */
    authError: string | null;
}

/** Result of `prefloop.retrain`. */
export interface RetrainResult {
    ok: boolean;
    message: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads a `prefloop.status` result ({@link StatusAnswer}); undefined when it lacks the
 * flags. Missing or out-of-range optional fields read as unknown.
 */
export function parseStatus(value: unknown): StatusResult | undefined {
    if (!isRecord(value) || typeof value.connected !== 'boolean' || typeof value.enabled !== 'boolean') {
        return undefined;
    }
    const rate = isRecord(value.today) ? value.today.acceptanceRate : undefined;
    const validRate = typeof rate === 'number' && Number.isFinite(rate) && rate >= 0 && rate <= 1;
    return {
        connected: value.connected,
        enabled: value.enabled,
        serverUrl: typeof value.serverUrl === 'string' ? value.serverUrl : '',
        modelVersion:
            typeof value.modelVersion === 'string' && value.modelVersion !== '' ? value.modelVersion : null,
        acceptanceRate: validRate ? rate : null,
        authError: typeof value.authError === 'string' && value.authError !== '' ? value.authError : null,
    };
}

/** The `enabled` flag of a `prefloop.toggle` result, if it carries one. */
export function parseEnabled(value: unknown): boolean | undefined {
    return isRecord(value) && typeof value.enabled === 'boolean' ? value.enabled : undefined;
}

/** A `prefloop.retrain` result; a result without `ok: false` counts as started. */
export function parseRetrain(value: unknown): RetrainResult {
    const fallback = 'retraining was requested';
    if (typeof value === 'string' && value !== '') {
        return { ok: true, message: value };
    }
    if (!isRecord(value)) {
        return { ok: true, message: fallback };
    }
    const message = typeof value.message === 'string' && value.message !== '' ? value.message : undefined;
    const ok = value.ok !== false;
    return { ok, message: message ?? (ok ? fallback : 'retraining could not be started') };
}
