// SPDX-License-Identifier: Apache-2.0
// Open avm's web display page (noVNC, display.web) in Debian's headless
// Chromium, wait until the guest's screen is on the page, save a
// screenshot, then click the middle of the screen and type a key.
//
//   node tests/browser/novnc.mjs URL SCREENSHOT.png [KEY]
//   node tests/browser/novnc.mjs --page-only URL
//
// Prints one JSON line: {"connected_ms", "first_frame_ms", "width",
// "height", "lit": pixels of the screen that are not black, "clicked":
// [x, y] in the guest's pixels, "total_ms": from the script's start to the
// first frame, browser start included}.  Exit 1 with a message on stderr
// when the page does not connect or shows nothing within the time limit.
// --page-only loads the page without connecting and prints {"total_ms"}
// to that point: the browser's and the page's own cost (make bench's
// baseline for the first frame).
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const start = Date.now();
const pageOnly = process.argv[2] === '--page-only';
const [url, shot, key = 'a'] = pageOnly ? [process.argv[3], '-'] : process.argv.slice(2);
if (!url || !shot) {
  console.error('usage: node novnc.mjs URL SCREENSHOT.png [KEY]');
  process.exit(2);
}
const limit = Number(process.env.AVM_BROWSER_TIMEOUT_MS || 60000);

// As the machine's probe starts it: no sandbox (root), no GPU, and none of
// the background connections a closed network refuses.
const browser = await chromium.launch({
  executablePath: process.env.AVM_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let status = 1;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  if (pageOnly) {
    await page.goto(url.replace(/\?.*/, ''), { timeout: limit, waitUntil: 'load' });
    await page.waitForSelector('#noVNC_container', { state: 'attached', timeout: limit });
    console.log(JSON.stringify({ total_ms: Date.now() - start }));
    status = 0;
    throw null;
  }
  const t0 = Date.now();
  await page.goto(url, { timeout: limit });
  // noVNC marks the document once the RFB handshake is done.
  await page.waitForSelector('html.noVNC_connected', { timeout: limit });
  const connected = Date.now() - t0;
  // The framebuffer: noVNC draws into a 2D canvas of the guest's size.
  const canvas = await page.waitForSelector('#noVNC_container canvas', { timeout: limit });
  const lit = async () => page.evaluate(() => {
    const c = document.querySelector('#noVNC_container canvas');
    if (!c || !c.width || !c.height) return { w: 0, h: 0, n: 0 };
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 32 || d[i + 1] > 32 || d[i + 2] > 32) n++;
    return { w: c.width, h: c.height, n };
  });
  let s = await lit();
  while (s.n === 0 && Date.now() - t0 < limit) {
    await page.waitForTimeout(100);
    s = await lit();
  }
  const firstFrame = Date.now() - t0;
  const total = Date.now() - start;
  // The guest's pixels as the page has them (the canvas, not the page's
  // overlays: noVNC's status bar and control handle lie over it).
  const png = await page.evaluate(() => document.querySelector('#noVNC_container canvas').toDataURL('image/png'));
  writeFileSync(shot, Buffer.from(png.slice(png.indexOf(',') + 1), 'base64'));
  if (s.n === 0) throw new Error(`the screen stayed black for ${limit} ms`);
  // A click in the middle of the screen (noVNC scales the canvas to the
  // page: resize=scale), then a key, with the canvas focused by the click.
  const box = await canvas.boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await page.keyboard.press(key);
  // Let noVNC flush the events before the browser goes.
  await page.waitForTimeout(500);
  console.log(JSON.stringify({ connected_ms: connected, first_frame_ms: firstFrame, width: s.w, height: s.h,
    lit: s.n, clicked: [Math.round(s.w / 2), Math.round(s.h / 2)], total_ms: total }));
  status = 0;
} catch (e) {
  if (e) console.error(`novnc.mjs: ${e.message}`);
} finally {
  await browser.close();
}
process.exit(status);
