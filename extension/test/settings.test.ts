import { describe, expect, it } from 'vitest';
import {
    DEFAULT_SETTINGS,
    documentSelector,
    needsRestart,
    readSettings,
    toInitializationOptions,
    type ConfigurationReader,
} from '../src/settings';

function config(values: Record<string, unknown>): ConfigurationReader {
    return { get: (key) => values[key] };
}

describe('readSettings', () => {
    it('falls back to the defaults when nothing is set', () => {
        expect(readSettings(config({}))).toEqual(DEFAULT_SETTINGS);
    });

    it('reads every setting', () => {
        const settings = readSettings(
            config({
                serverUrl: ' http://gpu-host:9000/ ',
                token: 'a token left in settings.json',
                enabledLanguages: ['python', ' typescript ', 'python', ''],
                debounceMs: 120.4,
                mode: 'single_line',
                pythonPath: '/opt/venv/bin/python',
                'advanced.checkpoints': { '30s': 0.5, '2m': 1, '5m': 1.5, '10m': 2 },
                'advanced.statusIntervalSeconds': 2,
            }),
        );
        expect(settings).toEqual({
            serverUrl: 'http://gpu-host:9000',
            enabledLanguages: ['python', 'typescript'],
            debounceMs: 120,
            mode: 'single_line',
            pythonPath: '/opt/venv/bin/python',
            checkpoints: { '30s': 0.5, '2m': 1, '5m': 1.5, '10m': 2 },
            statusIntervalSeconds: 2,
        });
    });

    it('ignores values of the wrong type or range', () => {
        const settings = readSettings(
            config({
                serverUrl: 42,
                token: '   ',
                enabledLanguages: 'python',
                debounceMs: -5,
                mode: 'whole_file',
                pythonPath: null,
                'advanced.checkpoints': { '30s': -1, '2m': 'soon', '5m': Number.NaN, extra: 3 },
                'advanced.statusIntervalSeconds': 0,
            }),
        );
        expect(settings).toEqual(DEFAULT_SETTINGS);
    });

    it('keeps single checkpoints that are valid', () => {
        const settings = readSettings(config({ 'advanced.checkpoints': { '2m': 3 } }));
        expect(settings.checkpoints).toEqual({ '30s': 30, '2m': 3, '5m': 300, '10m': 600 });
    });

    it('allows turning every language off', () => {
        expect(readSettings(config({ enabledLanguages: [] })).enabledLanguages).toEqual([]);
    });
});

describe('toInitializationOptions', () => {
    it('maps settings to exactly the options the language server reads', () => {
        const options = toInitializationOptions({
            ...DEFAULT_SETTINGS,
            mode: 'single_line',
            checkpoints: { '30s': 1, '2m': 2, '5m': 3, '10m': 4 },
        });
        expect(options).toEqual({
            serverUrl: 'http://127.0.0.1:8765',
            debounce: 0.075,
            mode: 'single_line',
            retentionCheckpoints: [1, 2, 3, 4],
        });
    });

    it('carries no token and does not share the checkpoints', () => {
        const settings = { ...DEFAULT_SETTINGS };
        const options = toInitializationOptions(settings);
        expect(Object.keys(options)).not.toContain('token');
        options.retentionCheckpoints[0] = 1;
        expect(settings.checkpoints['30s']).toBe(30);
    });

    it('never carries the extension-only settings', () => {
        const options = toInitializationOptions({ ...DEFAULT_SETTINGS, pythonPath: '/usr/bin/python3' });
        expect(Object.keys(options)).not.toContain('pythonPath');
        expect(Object.keys(options)).not.toContain('statusIntervalSeconds');
    });
});

describe('documentSelector', () => {
    it('selects every language of local and untitled documents for *', () => {
        expect(documentSelector(['*'])).toEqual([{ scheme: 'file' }, { scheme: 'untitled' }]);
        expect(documentSelector(['python', '*'])).toEqual([{ scheme: 'file' }, { scheme: 'untitled' }]);
    });

    it('selects the listed languages only', () => {
        expect(documentSelector(['python', 'go'])).toEqual([
            { scheme: 'file', language: 'python' },
            { scheme: 'untitled', language: 'python' },
            { scheme: 'file', language: 'go' },
            { scheme: 'untitled', language: 'go' },
        ]);
        expect(documentSelector([])).toEqual([]);
    });
});

describe('needsRestart', () => {
    it('restarts for settings the language server was started with', () => {
        expect(needsRestart(DEFAULT_SETTINGS, { ...DEFAULT_SETTINGS })).toBe(false);
        expect(needsRestart(DEFAULT_SETTINGS, { ...DEFAULT_SETTINGS, debounceMs: 10 })).toBe(true);
        expect(needsRestart(DEFAULT_SETTINGS, { ...DEFAULT_SETTINGS, enabledLanguages: ['go'] })).toBe(true);
        const checkpoints = { ...DEFAULT_SETTINGS.checkpoints, '10m': 1 };
        expect(needsRestart(DEFAULT_SETTINGS, { ...DEFAULT_SETTINGS, checkpoints })).toBe(true);
    });

    it('does not restart for the status interval', () => {
        expect(needsRestart(DEFAULT_SETTINGS, { ...DEFAULT_SETTINGS, statusIntervalSeconds: 5 })).toBe(false);
    });
});
