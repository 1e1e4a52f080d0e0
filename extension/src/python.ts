import * as path from 'node:path';

/** What choosing the interpreter depends on; passed in so tests need no file system. */
export interface PythonContext {
    /** The `prefloop.pythonPath` setting; empty for automatic. */
    configured: string;
    /** Absolute paths of the open workspace folders, first one first. */
    workspaceFolders: readonly string[];
    homeDir: string;
    platform: NodeJS.Platform;
    /** The workspace is trusted: only then may its own `.venv` run the language server. */
    trusted: boolean;
    exists(file: string): boolean;
}

export function venvPython(folder: string, platform: NodeJS.Platform): string {
    return platform === 'win32'
        ? path.win32.join(folder, '.venv', 'Scripts', 'python.exe')
        : path.posix.join(folder, '.venv', 'bin', 'python');
}

function expand(configured: string, context: PythonContext): string {
    const folder = context.workspaceFolders[0];
    let value = configured;
    if (folder !== undefined) {
        value = value.replaceAll('${workspaceFolder}', folder);
    }
    if (value === '~' || value.startsWith('~/')) {
        value = context.homeDir + value.slice(1);
    }
    const isBareName = !value.includes('/') && !value.includes('\\');
    if (isBareName || path.isAbsolute(value) || folder === undefined) {
        return value;
    }
    return path.resolve(folder, value);
}

/**
 * The interpreter that runs `prefloop lsp`: the setting when given (with
 * `${workspaceFolder}` and `~` expanded, relative paths taken from the first folder),
 * else, in a trusted workspace, the first workspace folder's `.venv` that exists, else
 * `python3`. An untrusted workspace's `.venv` is never run.
 */
export function resolvePython(context: PythonContext): string {
    if (context.configured.trim() !== '') {
        return expand(context.configured.trim(), context);
    }
    for (const folder of context.trusted ? context.workspaceFolders : []) {
        const candidate = venvPython(folder, context.platform);
        if (context.exists(candidate)) {
            return candidate;
        }
    }
    return context.platform === 'win32' ? 'python' : 'python3';
}

export interface ServerCommand {
    command: string;
    args: string[];
}

/**
 * `<python> -I -m prefloop lsp`: the language server over stdio. Isolated mode (`-I`)
 * leaves the current directory and `PYTHON*` variables out of the import path, so the
 * opened workspace's code cannot be imported in its place.
 */
export function serverCommand(python: string): ServerCommand {
    return { command: python, args: ['-I', '-m', 'prefloop', 'lsp'] };
}
