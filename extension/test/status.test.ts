import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { StatusResult } from '../src/protocol';
import { describeStatus, formatRate, formatStatus, StatusController, type StatusView } from '../src/status';

const ONLINE: StatusResult = {
    connected: true,
    serverUrl: 'http://127.0.0.1:8765',
    modelVersion: 'v3',
    acceptanceRate: 0.4242,
    enabled: true,
    authError: null,
};

describe('formatRate', () => {
    it('rounds to whole percent', () => {
        expect(formatRate(0)).toBe('0%');
        expect(formatRate(0.4242)).toBe('42%');
        expect(formatRate(0.995)).toBe('100%');
        expect(formatRate(null)).toBe('no suggestions shown yet');
    });
});

describe('formatStatus', () => {
    it('shows the model version and the acceptance rate when connected', () => {
        expect(formatStatus('running', ONLINE).text).toBe('$(check) prefloop v3 42%');
        expect(formatStatus('running', { ...ONLINE, acceptanceRate: null }).text).toBe(
            '$(check) prefloop v3',
        );
        expect(formatStatus('running', { ...ONLINE, modelVersion: null }).text).toBe(
            '$(check) prefloop unknown model 42%',
        );
    });

    it('says when the service refuses the token, and why in the tooltip', () => {
        const refused = { ...ONLINE, authError: 'no token set; this service needs one' };
        expect(formatStatus('running', refused).text).toBe('$(key) prefloop: token refused');
        expect(formatStatus('running', refused).tooltip).toContain('Token: no token set');
    });

    it('says when the service is unreachable or suggestions are off', () => {
        expect(formatStatus('running', { ...ONLINE, connected: false }).text).toBe(
            '$(debug-disconnect) prefloop: offline',
        );
        expect(formatStatus('running', { ...ONLINE, enabled: false, connected: false }).text).toBe(
            '$(circle-slash) prefloop: off',
        );
    });

    it('follows the language client state', () => {
        expect(formatStatus('starting', undefined).text).toBe('$(sync~spin) prefloop');
        expect(formatStatus('running', undefined).text).toBe('$(sync~spin) prefloop');
        expect(formatStatus('stopped', ONLINE).text).toBe('$(error) prefloop');
        const failed = formatStatus('running', undefined, 'Unhandled method prefloop.status');
        expect(failed.text).toBe('$(warning) prefloop');
        expect(failed.tooltip).toContain('Unhandled method prefloop.status');
    });

    it('describes everything in the tooltip', () => {
        expect(formatStatus('running', ONLINE).tooltip).toBe(describeStatus(ONLINE));
        expect(describeStatus(ONLINE)).toBe(
            [
                'prefloop suggestions: on',
                'Service: http://127.0.0.1:8765 (connected)',
                'Model version: v3',
                'Accepted today: 42%',
            ].join('\n'),
        );
        expect(describeStatus({ ...ONLINE, connected: false, serverUrl: '' })).toContain(
            'Service: unknown (not reachable)',
        );
    });
});

interface Deferred {
    resolve(status: StatusResult | undefined): void;
    reject(error: Error): void;
}

interface FakeSource {
    views: StatusView[];
    calls: Deferred[];
    fetch(): Promise<StatusResult | undefined>;
    render(view: StatusView): void;
}

function source(): FakeSource {
    const views: StatusView[] = [];
    const calls: Deferred[] = [];
    return {
        views,
        calls,
        fetch: () => new Promise((resolve, reject) => calls.push({ resolve, reject })),
        render: (view) => views.push(view),
    };
}

function last(views: StatusView[]): string | undefined {
    return views.at(-1)?.text;
}

describe('StatusController', () => {
    beforeEach(() => {
        vi.useFakeTimers();
    });

    afterEach(() => {
        vi.useRealTimers();
    });

    it('renders at once and asks for the status when the client runs', async () => {
        const fake = source();
        const controller = new StatusController(fake);
        expect(last(fake.views)).toBe('$(sync~spin) prefloop');
        controller.setClientState('running');
        expect(fake.calls).toHaveLength(1);
        fake.calls[0]?.resolve(ONLINE);
        await vi.waitFor(() => expect(last(fake.views)).toBe('$(check) prefloop v3 42%'));
        expect(controller.current).toEqual(ONLINE);
    });

    it('does not ask a client that is not running', async () => {
        const fake = source();
        const controller = new StatusController(fake);
        expect(await controller.refresh()).toBeUndefined();
        expect(fake.calls).toHaveLength(0);
    });

    it('lets a newer answer win over an older one', async () => {
        const fake = source();
        const controller = new StatusController(fake);
        controller.setClientState('running');
        const older = controller.refresh();
        fake.calls[1]?.resolve({ ...ONLINE, modelVersion: 'v4' });
        fake.calls[0]?.resolve(ONLINE);
        await older;
        expect(last(fake.views)).toBe('$(check) prefloop v4 42%');
    });

    it('shows a failed status request and keeps the last good status', async () => {
        const fake = source();
        const controller = new StatusController(fake);
        controller.setClientState('running');
        fake.calls[0]?.reject(new Error('Unhandled method prefloop.status'));
        await vi.waitFor(() => expect(last(fake.views)).toBe('$(warning) prefloop'));
        const again = controller.refresh();
        fake.calls[1]?.resolve(ONLINE);
        await again;
        const failing = controller.refresh();
        fake.calls[2]?.reject(new Error('timeout'));
        await failing;
        expect(last(fake.views)).toBe('$(check) prefloop v3 42%');
    });

    it('forgets the status when the client stops and ignores answers that come later', async () => {
        const fake = source();
        const controller = new StatusController(fake);
        controller.setClientState('running');
        controller.setClientState('stopped');
        fake.calls[0]?.resolve(ONLINE);
        await Promise.resolve();
        expect(last(fake.views)).toBe('$(error) prefloop');
        expect(controller.current).toBeUndefined();
    });

    it('polls at the given interval until disposed', () => {
        const fake = source();
        const controller = new StatusController(fake);
        controller.setClientState('running');
        controller.poll(30);
        vi.advanceTimersByTime(29_999);
        expect(fake.calls).toHaveLength(1);
        vi.advanceTimersByTime(1);
        expect(fake.calls).toHaveLength(2);
        controller.poll(5);
        vi.advanceTimersByTime(10_000);
        expect(fake.calls).toHaveLength(4);
        controller.dispose();
        vi.advanceTimersByTime(60_000);
        expect(fake.calls).toHaveLength(4);
    });
});
