/**
 * The two bearer tokens the language server sends to the service, kept in VS Code's
 * SecretStorage (the operating system's keychain), never in settings:
 * - the developer's token, sent with every request (suggestions, events, status);
 * - an admin's token, sent with `/admin` requests only (Trigger Retrain).
 * They reach the language server through its environment (`PREFLOOP_TOKEN`,
 * `PREFLOOP_ADMIN_TOKEN`), so they are written neither to disk nor to its
 * `initialize` message (which a message trace would log).
 */

/** Which token: the developer's own, or an admin's. */
export type TokenKind = 'token' | 'adminToken';

export const TOKEN_KINDS = ['token', 'adminToken'] as const satisfies readonly TokenKind[];

/** SecretStorage keys of the tokens. */
export const SECRET_KEYS: Readonly<Record<TokenKind, string>> = {
    token: 'prefloop.token',
    adminToken: 'prefloop.adminToken',
};

/** The environment variable of the language server that carries each token. */
export const TOKEN_ENV: Readonly<Record<TokenKind, string>> = {
    token: 'PREFLOOP_TOKEN',
    adminToken: 'PREFLOOP_ADMIN_TOKEN',
};

/** What each token is called when the user is asked for it or told about it. */
export const TOKEN_LABELS: Readonly<Record<TokenKind, string>> = {
    token: 'token',
    adminToken: 'admin token',
};

/** The tokens set through the extension's commands; an unset one is absent. */
export type Tokens = Partial<Record<TokenKind, string>>;

/** The subset of `vscode.SecretStorage` the tokens are kept in. */
export interface SecretStore {
    get(key: string): Thenable<string | undefined>;
    store(key: string, value: string): Thenable<void>;
    delete(key: string): Thenable<void>;
}

/** A token as typed or pasted: trimmed; undefined when empty or not one line. */
export function cleanToken(value: string | undefined): string | undefined {
    if (value === undefined) {
        return undefined;
    }
    const token = value.trim();
    return token === '' || /\s/.test(token) ? undefined : token;
}

export async function readTokens(secrets: SecretStore): Promise<Tokens> {
    const tokens: Tokens = {};
    for (const kind of TOKEN_KINDS) {
        const value = cleanToken(await secrets.get(SECRET_KEYS[kind]));
        if (value !== undefined) {
            tokens[kind] = value;
        }
    }
    return tokens;
}

export async function storeToken(
    secrets: SecretStore,
    kind: TokenKind,
    value: string | undefined,
): Promise<void> {
    const token = cleanToken(value);
    if (token === undefined) {
        await secrets.delete(SECRET_KEYS[kind]);
    } else {
        await secrets.store(SECRET_KEYS[kind], token);
    }
}

/**
 * The language server's environment: `base` with each token set through the extension
 * in its variable. A token not set there keeps what `base` has (a variable set where VS
 * Code was started).
 */
export function serverEnvironment(
    base: Readonly<Record<string, string | undefined>>,
    tokens: Tokens,
): Record<string, string | undefined> {
    const env: Record<string, string | undefined> = { ...base };
    for (const kind of TOKEN_KINDS) {
        const value = tokens[kind];
        if (value !== undefined) {
            env[TOKEN_ENV[kind]] = value;
        }
    }
    return env;
}

/** Whether two sets of tokens differ (then the language server is restarted). */
export function tokensChanged(before: Tokens, after: Tokens): boolean {
    return TOKEN_KINDS.some((kind) => before[kind] !== after[kind]);
}
