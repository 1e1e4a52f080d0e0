import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLIENT_ID, CONFIG_SECTION, EXTENSION_COMMANDS, EXTENSION_ID } from '../src/contributions';
import { LSP_COMMANDS, MODES, TIMED_CHECKPOINTS } from '../src/protocol';
import { DEFAULT_SETTINGS, SETTING_KEYS, type Settings } from '../src/settings';

interface Contribution {
    command: string;
    title?: string;
    category?: string;
    key?: string;
    when?: string;
}

interface Property {
    default?: unknown;
    enum?: string[];
    properties?: Record<string, unknown>;
    scope?: string;
}

interface Manifest {
    name: string;
    publisher: string;
    main: string;
    engines: { vscode: string };
    activationEvents: string[];
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
    contributes: {
        commands: Contribution[];
        keybindings: Contribution[];
        menus: { commandPalette: Contribution[] };
        configuration: { properties: Record<string, Property> }[];
    };
}

function readJson(relative: string): unknown {
    return JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8'));
}

const manifest = readJson('../package.json') as Manifest;
const properties: Record<string, Property> = Object.assign(
    {},
    ...manifest.contributes.configuration.map((section) => section.properties),
);

function version(range: string): number[] {
    const match = /(\d+)\.(\d+)\.(\d+)/.exec(range);
    if (match === null) {
        throw new Error(`no version in ${range}`);
    }
    return match.slice(1).map(Number);
}

function atMost(a: number[], b: number[]): boolean {
    for (let i = 0; i < 3; i += 1) {
        const x = a[i] ?? 0;
        const y = b[i] ?? 0;
        if (x !== y) {
            return x < y;
        }
    }
    return true;
}

describe('package.json', () => {
    it('is the extension the code names', () => {
        expect(`${manifest.publisher}.${manifest.name}`).toBe(EXTENSION_ID);
        expect(manifest.main).toBe('./out/extension.js');
        expect(manifest.activationEvents).toContain('onStartupFinished');
    });

    it('contributes exactly the extension commands, in the prefloop category', () => {
        const contributed = manifest.contributes.commands.map((command) => command.command).sort();
        expect(contributed).toEqual(Object.values(EXTENSION_COMMANDS).sort());
        expect(manifest.contributes.commands.every((command) => command.category === 'prefloop')).toBe(true);
        const titles = new Map(
            manifest.contributes.commands.map((command) => [command.command, command.title]),
        );
        expect(titles.get(EXTENSION_COMMANDS.toggle)).toBe('Toggle Suggestions');
        expect(titles.get(EXTENSION_COMMANDS.retrain)).toBe('Trigger Retrain');
        expect(titles.get(EXTENSION_COMMANDS.showStatus)).toBe('Show Status');
        expect(titles.get(EXTENSION_COMMANDS.showLog)).toBe('Show Log');
    });

    it('leaves the language server commands to the language client', () => {
        const declared = [
            ...manifest.contributes.commands,
            ...manifest.contributes.keybindings,
            ...manifest.contributes.menus.commandPalette,
        ].map((entry) => entry.command);
        for (const id of Object.values(LSP_COMMANDS)) {
            expect(declared).not.toContain(id);
        }
    });

    it('binds Escape to the dismissal while a suggestion is visible', () => {
        const escape = manifest.contributes.keybindings.filter((binding) => binding.key === 'escape');
        expect(escape).toHaveLength(1);
        expect(escape[0]?.command).toBe(EXTENSION_COMMANDS.dismissVisible);
        expect(escape[0]?.when).toMatch(/(^|&& )inlineSuggestionVisible( &&|$)/);
        const hidden = manifest.contributes.menus.commandPalette.find(
            (entry) => entry.command === EXTENSION_COMMANDS.dismissVisible,
        );
        expect(hidden?.when).toBe('false');
    });

    it('lets no workspace choose the service or the interpreter, and keeps no token in settings', () => {
        for (const key of ['prefloop.serverUrl', 'prefloop.pythonPath']) {
            expect(['machine', 'application']).toContain(properties[key]?.scope);
        }
        expect(Object.keys(properties).filter((key) => /token/i.test(key))).toEqual([]);
    });

    it('declares every setting with the default the code uses', () => {
        const names = Object.keys(SETTING_KEYS) as (keyof Settings)[];
        const expected = names.map((name) => `${CONFIG_SECTION}.${SETTING_KEYS[name]}`);
        expect(Object.keys(properties).sort()).toEqual([...expected, `${CLIENT_ID}.trace.server`].sort());
        for (const name of names) {
            expect(properties[`${CONFIG_SECTION}.${SETTING_KEYS[name]}`]?.default, name).toEqual(
                DEFAULT_SETTINGS[name],
            );
        }
        expect(properties['prefloop.mode']?.enum).toEqual([...MODES]);
        expect(Object.keys(properties['prefloop.advanced.checkpoints']?.properties ?? {})).toEqual([
            ...TIMED_CHECKPOINTS,
        ]);
    });

    it('runs in code-server 4.100 and fits the language client and the typings', () => {
        const engine = version(manifest.engines.vscode);
        expect(atMost(engine, [1, 100, 3])).toBe(true);
        expect(atMost(version(manifest.devDependencies['@types/vscode'] ?? ''), engine)).toBe(true);
        const client = readJson('../node_modules/vscode-languageclient/package.json') as Manifest;
        expect(atMost(version(client.engines.vscode), engine)).toBe(true);
    });

    it('pins exact versions', () => {
        for (const range of [
            ...Object.values(manifest.dependencies),
            ...Object.values(manifest.devDependencies),
        ]) {
            expect(range).toMatch(/^\d+\.\d+\.\d+$/);
        }
    });
});
