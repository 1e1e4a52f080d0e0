import { describe, expect, it } from 'vitest';
import { EXTENSION_COMMANDS } from '../src/contributions';
import {
    CHECKPOINTS,
    DEFAULT_CHECKPOINT_SECONDS,
    DISMISS_REASONS,
    EVENT_KINDS,
    LSP_COMMANDS,
    MODES,
    parseEnabled,
    parseRetrain,
    parseStatus,
    type StatusAnswer,
    TIMED_CHECKPOINTS,
} from '../src/protocol';

describe('protocol constants', () => {
    it('mirror the wire protocol', () => {
        expect(EVENT_KINDS).toEqual([
            'shown',
            'accepted',
            'partially_accepted',
            'dismissed',
            'retained',
            'rewritten',
        ]);
        expect(DISMISS_REASONS).toEqual([
            'typed_over',
            'moved_away',
            'escaped',
            'closed',
            'replaced_by_newer',
        ]);
        expect(CHECKPOINTS).toEqual(['30s', '2m', '5m', '10m', 'save', 'close']);
        expect(MODES).toEqual(['single_line', 'multi_line']);
    });

    it('time every delayed checkpoint by its name', () => {
        expect(TIMED_CHECKPOINTS.every((name) => CHECKPOINTS.includes(name))).toBe(true);
        expect(DEFAULT_CHECKPOINT_SECONDS).toEqual({ '30s': 30, '2m': 120, '5m': 300, '10m': 600 });
    });

    it('name the language server commands', () => {
        expect(Object.values(LSP_COMMANDS)).toEqual([
            'prefloop.accept',
            'prefloop.dismiss',
            'prefloop.toggle',
            'prefloop.retrain',
            'prefloop.status',
        ]);
    });

    it('keep VS Code command ids apart from the language server ones', () => {
        const server: readonly string[] = Object.values(LSP_COMMANDS);
        for (const id of Object.values(EXTENSION_COMMANDS)) {
            expect(server).not.toContain(id);
        }
    });
});

describe('parseStatus', () => {
    const answer: StatusAnswer = {
        connected: true,
        state: 'connected',
        serverUrl: 'http://127.0.0.1:8765',
        modelVersion: 'base',
        serviceStatus: 'ok',
        lastError: null,
        authError: null,
        enabled: true,
        today: {
            date: '2026-12-06',
            shown: 4,
            accepted: 1,
            partiallyAccepted: 0,
            dismissed: 3,
            acceptanceRate: 0.25,
        },
        spooledEvents: 0,
        version: '0.1.0',
    };
    const shown = {
        connected: true,
        serverUrl: 'http://127.0.0.1:8765',
        modelVersion: 'base',
        acceptanceRate: 0.25,
        enabled: true,
        authError: null,
    };

    it('reads the status answer', () => {
        expect(parseStatus(answer)).toEqual(shown);
        expect(parseStatus({ ...answer, extra: 1 })).toEqual(shown);
    });

    it('reads why the service refuses the token', () => {
        const refused = 'the token was refused: the token was revoked';
        expect(parseStatus({ ...answer, authError: refused })?.authError).toBe(refused);
        expect(parseStatus({ ...answer, authError: 3 })?.authError).toBeNull();
    });

    it('normalises missing or out-of-range optional fields', () => {
        expect(parseStatus({ connected: false, enabled: true })).toEqual({
            connected: false,
            enabled: true,
            serverUrl: '',
            modelVersion: null,
            acceptanceRate: null,
            authError: null,
        });
        const today = (acceptanceRate: unknown) => ({
            ...answer,
            today: { ...answer.today, acceptanceRate },
        });
        expect(parseStatus(today(1.5))?.acceptanceRate).toBeNull();
        expect(parseStatus(today(Number.NaN))?.acceptanceRate).toBeNull();
        expect(parseStatus(today(null))?.acceptanceRate).toBeNull();
        expect(parseStatus({ ...answer, today: null })?.acceptanceRate).toBeNull();
        expect(parseStatus({ ...answer, modelVersion: '' })?.modelVersion).toBeNull();
    });

    it("reads today's acceptance rate from the day's counts only", () => {
        const { today: _, ...rest } = answer;
        expect(parseStatus({ ...rest, acceptanceRate: 0.9 })?.acceptanceRate).toBeNull();
        expect(parseStatus({ ...answer, acceptanceRate: 0.9 })?.acceptanceRate).toBe(0.25);
    });

    it('refuses results without the flags', () => {
        expect(parseStatus(null)).toBeUndefined();
        expect(parseStatus([answer])).toBeUndefined();
        expect(parseStatus({ ...answer, connected: 'yes' })).toBeUndefined();
        expect(parseStatus({ connected: true })).toBeUndefined();
    });
});

describe('command results', () => {
    it('read the enabled flag of a toggle result', () => {
        expect(parseEnabled({ enabled: false })).toBe(false);
        expect(parseEnabled({ enabled: 'no' })).toBeUndefined();
        expect(parseEnabled(undefined)).toBeUndefined();
    });

    it('read the outcome of a retrain request', () => {
        expect(parseRetrain({ ok: true, message: 'retraining started', result: {} })).toEqual({
            ok: true,
            message: 'retraining started',
        });
        expect(parseRetrain({ ok: false, message: 'the service answered 500' })).toEqual({
            ok: false,
            message: 'the service answered 500',
        });
        expect(parseRetrain({ ok: false })).toEqual({
            ok: false,
            message: 'retraining could not be started',
        });
        expect(parseRetrain('run 7 started')).toEqual({ ok: true, message: 'run 7 started' });
        expect(parseRetrain(null)).toEqual({ ok: true, message: 'retraining was requested' });
    });
});
