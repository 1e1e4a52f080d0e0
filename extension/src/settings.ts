import {
    DEFAULT_CHECKPOINT_SECONDS,
    MODES,
    TIMED_CHECKPOINTS,
    type CheckpointSeconds,
    type InitializationOptions,
    type Mode,
} from './protocol';

/** The extension's settings (`prefloop.*`), validated. */
export interface Settings {
    serverUrl: string;
    enabledLanguages: string[];
    debounceMs: number;
    mode: Mode;
    pythonPath: string;
    checkpoints: CheckpointSeconds;
    statusIntervalSeconds: number;
}

export const DEFAULT_SETTINGS: Readonly<Settings> = {
    serverUrl: 'http://127.0.0.1:8765',
    enabledLanguages: ['*'],
    debounceMs: 75,
    mode: 'multi_line',
    pythonPath: '',
    checkpoints: { ...DEFAULT_CHECKPOINT_SECONDS },
    statusIntervalSeconds: 30,
};

/** Where each setting lives under `prefloop.` in package.json's configuration. */
export const SETTING_KEYS = {
    serverUrl: 'serverUrl',
    enabledLanguages: 'enabledLanguages',
    debounceMs: 'debounceMs',
    mode: 'mode',
    pythonPath: 'pythonPath',
    checkpoints: 'advanced.checkpoints',
    statusIntervalSeconds: 'advanced.statusIntervalSeconds',
} as const satisfies Record<keyof Settings, string>;

/** The subset of `vscode.WorkspaceConfiguration` that settings are read through. */
export interface ConfigurationReader {
    get(key: string): unknown;
}

function nonEmptyString(value: unknown): string | undefined {
    return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

function nonNegativeNumber(value: unknown): number | undefined {
    return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

function isMode(value: unknown): value is Mode {
    return MODES.some((mode) => mode === value);
}

function readLanguages(value: unknown): string[] {
    if (!Array.isArray(value)) {
        return [...DEFAULT_SETTINGS.enabledLanguages];
    }
    const ids = value.filter((id): id is string => typeof id === 'string').map((id) => id.trim());
    return [...new Set(ids.filter((id) => id !== ''))];
}

function readCheckpoints(value: unknown): CheckpointSeconds {
    const result: CheckpointSeconds = { ...DEFAULT_CHECKPOINT_SECONDS };
    if (typeof value !== 'object' || value === null) {
        return result;
    }
    for (const name of TIMED_CHECKPOINTS) {
        const seconds: unknown = Reflect.get(value, name);
        if (typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0) {
            result[name] = seconds;
        }
    }
    return result;
}

export function readSettings(config: ConfigurationReader): Settings {
    const get = (name: keyof Settings): unknown => config.get(SETTING_KEYS[name]);
    const serverUrl = nonEmptyString(get('serverUrl')) ?? DEFAULT_SETTINGS.serverUrl;
    const debounceMs = nonNegativeNumber(get('debounceMs')) ?? DEFAULT_SETTINGS.debounceMs;
    const mode = get('mode');
    const interval = nonNegativeNumber(get('statusIntervalSeconds'));
    return {
        serverUrl: serverUrl.replace(/\/+$/, ''),
        enabledLanguages: readLanguages(get('enabledLanguages')),
        debounceMs: Math.round(debounceMs),
        mode: isMode(mode) ? mode : DEFAULT_SETTINGS.mode,
        pythonPath: nonEmptyString(get('pythonPath')) ?? '',
        checkpoints: readCheckpoints(get('checkpoints')),
        statusIntervalSeconds:
            interval !== undefined && interval > 0 ? interval : DEFAULT_SETTINGS.statusIntervalSeconds,
    };
}

export function toInitializationOptions(settings: Settings): InitializationOptions {
    const c = settings.checkpoints;
    return {
        serverUrl: settings.serverUrl,
        debounce: settings.debounceMs / 1000,
        mode: settings.mode,
        retentionCheckpoints: [c['30s'], c['2m'], c['5m'], c['10m']],
    };
}

/** A document filter as the language client takes it. */
export interface DocumentFilter {
    scheme: string;
    language?: string;
}

const SCHEMES = ['file', 'untitled'] as const;

/** Which documents the language server sees: every language for `*`, else the listed ones. */
export function documentSelector(enabledLanguages: readonly string[]): DocumentFilter[] {
    if (enabledLanguages.includes('*')) {
        return SCHEMES.map((scheme) => ({ scheme }));
    }
    return enabledLanguages.flatMap((language) => SCHEMES.map((scheme) => ({ scheme, language })));
}

/** Whether a settings change needs a new language server (only the status interval does not). */
export function needsRestart(before: Settings, after: Settings): boolean {
    const { statusIntervalSeconds: _before, ...restBefore } = before;
    const { statusIntervalSeconds: _after, ...restAfter } = after;
    return JSON.stringify(restBefore) !== JSON.stringify(restAfter);
}
