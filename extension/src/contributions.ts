/**
 * Names the extension declares in package.json's `contributes`; a unit test keeps the
 * two in step. These VS Code command ids differ from the language server's
 * (`LSP_COMMANDS`), which the language client registers in VS Code by itself.
 */

export const EXTENSION_ID = 'prefloop.prefloop';
export const CLIENT_ID = 'prefloop';
export const CLIENT_NAME = 'prefloop';
export const CONFIG_SECTION = 'prefloop';

export const EXTENSION_COMMANDS = {
    toggle: 'prefloop.toggleSuggestions',
    retrain: 'prefloop.triggerRetrain',
    showStatus: 'prefloop.showStatus',
    showLog: 'prefloop.showLog',
    dismissVisible: 'prefloop.dismissVisibleSuggestion',
    setToken: 'prefloop.setToken',
    clearToken: 'prefloop.clearToken',
    setAdminToken: 'prefloop.setAdminToken',
    clearAdminToken: 'prefloop.clearAdminToken',
} as const;
export type ExtensionCommand = (typeof EXTENSION_COMMANDS)[keyof typeof EXTENSION_COMMANDS];

/** VS Code's own command that hides the visible inline suggestion. */
export const HIDE_INLINE_SUGGESTION = 'editor.action.inlineSuggest.hide';
