import * as os from 'node:os';
import {
    commands,
    StatusBarAlignment,
    window,
    workspace,
    type ConfigurationChangeEvent,
    type Disposable,
    type LogOutputChannel,
    type StatusBarItem,
    type WorkspaceConfiguration,
} from 'vscode';

export function createOutputChannel(name: string): LogOutputChannel {
    return window.createOutputChannel(name, { log: true });
}

export function createStatusBarItem(id: string, name: string, command: string): StatusBarItem {
    const item = window.createStatusBarItem(id, StatusBarAlignment.Right, 100);
    item.name = name;
    item.command = command;
    return item;
}

export function getConfiguration(section: string): WorkspaceConfiguration {
    return workspace.getConfiguration(section);
}

export function onDidChangeConfiguration(listener: (event: ConfigurationChangeEvent) => void): Disposable {
    return workspace.onDidChangeConfiguration(listener);
}

/** Absolute paths of the open local workspace folders. */
export function workspaceFolderPaths(): string[] {
    return (workspace.workspaceFolders ?? [])
        .filter((folder) => folder.uri.scheme === 'file')
        .map((folder) => folder.uri.fsPath);
}

/** Whether the user trusts the opened workspace (VS Code's Workspace Trust). */
export function isWorkspaceTrusted(): boolean {
    return workspace.isTrusted;
}

export function onDidGrantWorkspaceTrust(listener: () => void): Disposable {
    return workspace.onDidGrantWorkspaceTrust(listener);
}

/** Asks for a secret in a password box; undefined when the user cancels. */
export function askSecret(title: string, prompt: string): Thenable<string | undefined> {
    return window.showInputBox({ title, prompt, password: true, ignoreFocusOut: true });
}

export function homeDir(): string {
    return os.homedir();
}

export function registerCommand(command: string, callback: () => unknown): Disposable {
    return commands.registerCommand(command, callback);
}

export function executeCommand(command: string): Thenable<unknown> {
    return commands.executeCommand(command);
}

/** The URI of the active editor's document, if an editor is active. */
export function activeDocumentUri(): string | undefined {
    return window.activeTextEditor?.document.uri.toString();
}

export function showInformation(message: string, ...actions: string[]): Thenable<string | undefined> {
    return window.showInformationMessage(message, ...actions);
}

export function showWarning(message: string, ...actions: string[]): Thenable<string | undefined> {
    return window.showWarningMessage(message, ...actions);
}
