"""`python -m bench.numbers_bench`: the cost of the number detector (static/numbers.js,
`softphone.click_to_call.detect: true`) on a CRM list of 5,000 rows, in headless Chromium.

No gateway and no network: the page is written in place and numbers.js is added as the widget
would run it, configured with `detect: true`. Measured by the page itself (performance.now):

- the first scan: every text node of the page, two numbers per row marked (10,000 ranges),
  in slices of about 8 ms (its busy time, its wall time, its longest slice);
- batches of DOM updates like a single-page CRM's: rows appended, cells rewritten, rows
  removed; each batch is handled in one animation frame (the MutationObserver's records,
  each added subtree scanned once), its time taken by numbers.js itself (`stats.lastBatchMs`);

Figures only (bench/RESULTS.md); no test asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from pathlib import Path

from playwright.async_api import Page, async_playwright

NUMBERS_JS = Path(__file__).resolve().parents[1] / "ccc_gateway" / "static" / "numbers.js"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

# Two frames later the batch of DOM updates has been handled (one animation frame).
AFTER = (
    "requestAnimationFrame(() => requestAnimationFrame("
    "() => done(window.cccNumbers.stats.lastBatchMs)));"
)
# A CRM list: name, mobile, landline, e-mail, a note, a link (never marked), an input.
TABLE = """() => {
  const rows = [];
  for (let i = 0; i < %(rows)d; i += 1) {
    const n = String(i).padStart(4, '0');
    rows.push('<tr><td>Customer ' + i + '</td><td>138 0013 ' + n + '</td><td>010-8888' + n
      + '</td><td>c' + i + '@example.com</td><td>Called on 2024-01-15, order 1234567' + n
      + '</td><td><a href="/c/' + i + '">139' + n + '0000</a></td><td><input value="13' + n
      + '"></td></tr>');
  }
  document.body.innerHTML = '<table><tbody id="rows">' + rows.join('') + '</tbody></table>';
}"""
ADD_ROWS = """(count) => new Promise((done) => {
  const body = document.getElementById('rows');
  for (let i = 0; i < count; i += 1) {
    const row = document.createElement('tr');
    row.innerHTML = '<td>New</td><td>+86 139 0000 ' + String(i).padStart(4, '0') + '</td>';
    body.append(row);
  }
  %(after)s
})"""
REWRITE_CELLS = """(count) => new Promise((done) => {
  const cells = document.querySelectorAll('#rows td:nth-child(2)');
  for (let i = 0; i < count; i += 1) {
    cells[i].textContent = '137 0000 ' + String(i).padStart(4, '0');
  }
  %(after)s
})"""
REMOVE_ROWS = """(count) => new Promise((done) => {
  const body = document.getElementById('rows');
  for (let i = 0; i < count; i += 1) body.lastElementChild.remove();
  %(after)s
})"""


async def measure(page: Page, rows: int, batches: int, batch: int) -> dict[str, object]:
    await page.set_content("<!doctype html><title>bench</title><body></body>")
    await page.evaluate(TABLE % {"rows": rows})
    source = NUMBERS_JS.read_text(encoding="utf-8").replace(
        "/*CCC_CLICK_TO_CALL*/null", json.dumps({"selectors": [], "detect": True, "pattern": None})
    )
    await page.add_script_tag(content=source)
    await page.evaluate("() => window.cccNumbers.watch(() => {})")
    await page.wait_for_function("() => window.cccNumbers.stats.scans === 1")
    stats = await page.evaluate("() => Object.assign({}, window.cccNumbers.stats)")
    result: dict[str, object] = {
        "rows": rows,
        "scan_busy_ms": round(stats["lastScanMs"], 1),
        "scan_wall_ms": round(stats["scanWallMs"], 1),
        "longest_slice_ms": round(stats["longestSliceMs"], 1),
        "numbers_marked": stats["numbers"],
    }
    for name, script in (("add", ADD_ROWS), ("rewrite", REWRITE_CELLS), ("remove", REMOVE_ROWS)):
        times = [await page.evaluate(script % {"after": AFTER}, batch) for _ in range(batches)]
        result[f"{name}_{batch}_median_ms"] = round(statistics.median(times), 2)
        result[f"{name}_{batch}_max_ms"] = round(max(times), 2)
    result["numbers_after"] = await page.evaluate("() => window.cccNumbers.stats.numbers")
    return result


async def main(rows: int, batches: int, batch: int, runs: int) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for _ in range(runs):
                page = await browser.new_page()
                print(json.dumps(await measure(page, rows, batches, batch)))
                await page.close()
        finally:
            await browser.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50, help="rows or cells per DOM update")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    asyncio.run(main(options.rows, options.batches, options.batch, options.runs))
