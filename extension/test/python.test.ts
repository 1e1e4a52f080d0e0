import { describe, expect, it } from 'vitest';
import { resolvePython, serverCommand, venvPython, type PythonContext } from '../src/python';

function context(overrides: Partial<PythonContext> = {}): PythonContext {
    return {
        configured: '',
        workspaceFolders: ['/work/project'],
        homeDir: '/home/dev',
        platform: 'linux',
        exists: () => false,
        trusted: true,
        ...overrides,
    };
}

describe('resolvePython', () => {
    it("uses the workspace's .venv when it exists", () => {
        const exists = (file: string): boolean => file === '/work/project/.venv/bin/python';
        expect(resolvePython(context({ exists }))).toBe('/work/project/.venv/bin/python');
    });

    it('looks at every workspace folder, first one first', () => {
        const exists = (file: string): boolean => file.startsWith('/work/other/');
        const folders = ['/work/project', '/work/other'];
        expect(resolvePython(context({ exists, workspaceFolders: folders }))).toBe(
            '/work/other/.venv/bin/python',
        );
    });

    it("never runs an untrusted workspace's .venv", () => {
        const exists = (): boolean => true;
        expect(resolvePython(context({ exists, trusted: false }))).toBe('python3');
    });

    it('falls back to python3 without a .venv or a workspace', () => {
        expect(resolvePython(context())).toBe('python3');
        expect(resolvePython(context({ workspaceFolders: [] }))).toBe('python3');
    });

    it('prefers the setting over a .venv', () => {
        const exists = (): boolean => true;
        expect(resolvePython(context({ configured: '/opt/py/bin/python3.11', exists }))).toBe(
            '/opt/py/bin/python3.11',
        );
    });

    it('keeps a bare interpreter name for the PATH to resolve', () => {
        expect(resolvePython(context({ configured: ' python3.11 ' }))).toBe('python3.11');
    });

    it('expands ${workspaceFolder}, ~ and relative paths', () => {
        expect(resolvePython(context({ configured: '${workspaceFolder}/env/bin/python' }))).toBe(
            '/work/project/env/bin/python',
        );
        expect(resolvePython(context({ configured: '~/venvs/prefloop/bin/python' }))).toBe(
            '/home/dev/venvs/prefloop/bin/python',
        );
        expect(resolvePython(context({ configured: 'env/bin/python' }))).toBe('/work/project/env/bin/python');
    });

    it('uses Scripts\\python.exe and python on Windows', () => {
        expect(venvPython('C:\\work\\project', 'win32')).toBe(
            'C:\\work\\project\\.venv\\Scripts\\python.exe',
        );
        expect(resolvePython(context({ platform: 'win32', workspaceFolders: ['C:\\p'] }))).toBe('python');
    });
});

describe('serverCommand', () => {
    it('runs the language server module over stdio, isolated from the workspace', () => {
        expect(serverCommand('/venv/bin/python')).toEqual({
            command: '/venv/bin/python',
            args: ['-I', '-m', 'prefloop', 'lsp'],
        });
    });
});
