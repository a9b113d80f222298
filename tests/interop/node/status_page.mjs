// Loads chatpulse's status page in headless Chromium (Debian's) at a given
// width (default a phone's, 390 px): prints what it measured as JSON and
// writes a screenshot.
// usage: node status_page.mjs URL SCREENSHOT [WIDTH]
import { chromium } from 'playwright-core';

const [url, screenshot, width = '390'] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-quic'],
});
try {
  const page = await browser.newPage({ viewport: { width: Number(width), height: 844 }, javaScriptEnabled: false });
  await page.goto(url, { waitUntil: 'load' });
  // javaScriptEnabled: false applies to the page's own scripts; playwright's
  // evaluation still works and measures the rendered layout.
  const measured = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    text: document.body.innerText,
    services: [...document.querySelectorAll('section.service')].map(s => ({
      id: s.id,
      state: s.querySelector('.badge')?.textContent,
      cause: s.querySelector('.cause')?.textContent ?? null,
      bar: s.querySelectorAll('.bar span').length,
      width: Math.round(s.getBoundingClientRect().width),
      left: Math.round(s.getBoundingClientRect().left),
    })),
    charts: document.querySelectorAll('svg.chart').length,
    banners: [...document.querySelectorAll('.banner')].map(b => ({
      text: b.textContent,
      width: Math.round(b.getBoundingClientRect().width),
      left: Math.round(b.getBoundingClientRect().left),
    })),
  }));
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify(measured));
} finally {
  await browser.close();
}
