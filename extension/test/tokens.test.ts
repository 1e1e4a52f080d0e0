import { describe, expect, it } from 'vitest';
import {
    cleanToken,
    readTokens,
    SECRET_KEYS,
    serverEnvironment,
    storeToken,
    tokensChanged,
    type SecretStore,
} from '../src/tokens';

/** A SecretStorage kept in a map, as VS Code's behaves for one extension. */
function memorySecrets(initial: Record<string, string> = {}): SecretStore & { values: Map<string, string> } {
    const values = new Map(Object.entries(initial));
    return {
        values,
        get: async (key) => values.get(key),
        store: async (key, value) => {
            values.set(key, value);
        },
        delete: async (key) => {
            values.delete(key);
        },
    };
}

describe('tokens', () => {
    it('keeps a typed token trimmed, and clears on an empty one', async () => {
        const secrets = memorySecrets();
        await storeToken(secrets, 'token', '  pfl_abc \n');
        await storeToken(secrets, 'adminToken', 'pfl_root');
        expect(await readTokens(secrets)).toEqual({ token: 'pfl_abc', adminToken: 'pfl_root' });
        await storeToken(secrets, 'adminToken', '   ');
        expect(secrets.values.has(SECRET_KEYS.adminToken)).toBe(false);
        await storeToken(secrets, 'token', undefined);
        expect(await readTokens(secrets)).toEqual({});
    });

    it('refuses a token with spaces inside', () => {
        expect(cleanToken('pfl_a pfl_b')).toBeUndefined();
        expect(cleanToken('Bearer pfl_a')).toBeUndefined();
        expect(cleanToken(' pfl_a ')).toBe('pfl_a');
    });

    it('passes the tokens in the environment, not anywhere else', () => {
        const base = { PATH: '/usr/bin', PREFLOOP_ADMIN_TOKEN: 'from-the-shell' };
        expect(serverEnvironment(base, { token: 'pfl_abc' })).toEqual({
            PATH: '/usr/bin',
            PREFLOOP_TOKEN: 'pfl_abc',
            PREFLOOP_ADMIN_TOKEN: 'from-the-shell',
        });
        expect(serverEnvironment(base, { adminToken: 'pfl_root' }).PREFLOOP_ADMIN_TOKEN).toBe('pfl_root');
        expect(base.PREFLOOP_ADMIN_TOKEN).toBe('from-the-shell');
    });

    it('notices a changed, added or cleared token', () => {
        expect(tokensChanged({ token: 'a' }, { token: 'a' })).toBe(false);
        expect(tokensChanged({ token: 'a' }, { token: 'b' })).toBe(true);
        expect(tokensChanged({}, { adminToken: 'r' })).toBe(true);
        expect(tokensChanged({ token: 'a' }, {})).toBe(true);
    });
});
