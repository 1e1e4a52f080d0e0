// Drives one headless chromium page for the end-to-end tests: one JSON request per line
// on stdin ({"id", "op", ...args}), one JSON answer per line on stdout ({"id", "ok",
// "result"} or {"id", "ok": false, "error"}). tests/e2e/workbench.py is the other side.
// playwright-core is loaded from the directory in PREFLOOP_E2E_DRIVER_MODULES (the
// install made by scripts/setup-editor.sh).
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as readline from 'node:readline';

const modules = process.env.PREFLOOP_E2E_DRIVER_MODULES;
if (!modules) {
    console.error('PREFLOOP_E2E_DRIVER_MODULES is not set');
    process.exit(2);
}
const require = createRequire(path.join(modules, 'package.json'));
const { chromium } = require('playwright-core');

let browser;
let page;
const consoleLines = [];

const ops = {
    async launch({ executable, width = 1200, height = 800, scale = 1 }) {
        browser = await chromium.launch({
            executablePath: executable,
            headless: true,
            args: [
                '--no-sandbox',
                '--disable-gpu',
                '--disable-background-networking',
                '--disable-component-update',
                '--disable-sync',
                '--no-first-run',
            ],
        });
        const context = await browser.newContext({
            viewport: { width, height },
            deviceScaleFactor: scale,
        });
        page = await context.newPage();
        page.on('console', (message) => {
            consoleLines.push(`${message.type()}: ${message.text()}`);
            if (consoleLines.length > 2000) {
                consoleLines.splice(0, 1000);
            }
        });
        return null;
    },
    async goto({ url, timeout = 60000 }) {
        await page.goto(url, { timeout, waitUntil: 'domcontentloaded' });
        return null;
    },
    async wait({ selector, state = 'visible', timeout = 30000 }) {
        await page.locator(selector).first().waitFor({ state, timeout });
        return null;
    },
    async waitText({ selector, pattern, flags = '', timeout = 30000 }) {
        const regex = new RegExp(pattern, flags);
        const handle = await page.waitForFunction(
            ([sel, source, fl]) => {
                const re = new RegExp(source, fl);
                for (const el of document.querySelectorAll(sel)) {
                    const text = el.textContent ?? '';
                    if (re.test(text)) {
                        return text;
                    }
                }
                return null;
            },
            [selector, regex.source, regex.flags],
            { timeout, polling: 25 },
        );
        return await handle.jsonValue();
    },
    async count({ selector }) {
        return await page.locator(selector).count();
    },
    async texts({ selector }) {
        return await page.locator(selector).allTextContents();
    },
    async click({ selector, timeout = 30000 }) {
        await page.locator(selector).first().click({ timeout });
        return null;
    },
    async type({ text, delay = 0 }) {
        await page.keyboard.type(text, { delay });
        return null;
    },
    async press({ key }) {
        await page.keyboard.press(key);
        return null;
    },
    // Types `text`, then waits for `selector` to appear; returns the milliseconds from
    // the last keystroke to the element being visible (measured in the page's clock).
    async typeAndTime({ text, selector, timeout = 60000 }) {
        const last = text.slice(-1);
        await page.keyboard.type(text.slice(0, -1));
        const before = await page.evaluate(() => performance.now());
        await page.keyboard.type(last);
        const handle = await page.waitForFunction(
            (sel) => {
                const el = document.querySelector(sel);
                return el !== null && el.getBoundingClientRect().width > 0 ? performance.now() : null;
            },
            selector,
            { timeout, polling: 'raf' },
        );
        const seen = await handle.jsonValue();
        return seen - before;
    },
    async screenshot({ file, selector }) {
        if (selector) {
            await page.locator(selector).first().screenshot({ path: file });
        } else {
            await page.screenshot({ path: file });
        }
        return file;
    },
    async evaluate({ expression }) {
        return await page.evaluate(expression);
    },
    async console() {
        return consoleLines.slice(-200);
    },
    async close() {
        if (browser) {
            await browser.close();
        }
        browser = undefined;
        return null;
    },
};

const input = readline.createInterface({ input: process.stdin });
for await (const line of input) {
    if (!line.trim()) {
        continue;
    }
    let request;
    try {
        request = JSON.parse(line);
    } catch (error) {
        process.stdout.write(JSON.stringify({ id: null, ok: false, error: `bad JSON: ${error}` }) + '\n');
        continue;
    }
    const handler = ops[request.op];
    let answer;
    if (!handler) {
        answer = { id: request.id, ok: false, error: `unknown op ${request.op}` };
    } else {
        try {
            answer = { id: request.id, ok: true, result: (await handler(request)) ?? null };
        } catch (error) {
            answer = { id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) };
        }
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
}
if (browser) {
    await browser.close();
}
