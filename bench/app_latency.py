"""Browser app latency: from clicking **Segment & diagnose** to the diagnosis shown, for ACDC patients.

Starts ``cardiac-mtl app --device cpu`` on a free local port, drives it with headless Chromium
(``/usr/bin/chromium`` through playwright), loads each patient, clicks the button and waits for the
diagnosis text. Prints per patient the time the browser saw and the time the server measured (analysis
and scene update), then the median. The issue's bar: at most 3 s on the CPU.

    .venv/bin/python bench/app_latency.py [--patients patient001 patient021 ...] [--data ../shared/data/acdc]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def wait_text(page, element_id: str, predicate: str, timeout_ms: int) -> None:
    page.wait_for_function(
        f"() => {{ const e = document.getElementById('{element_id}'); if (!e) return false;"
        f" const t = e.textContent; return {predicate}; }}",
        timeout=timeout_ms,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data" / "acdc"))
    parser.add_argument(
        "--patients",
        nargs="+",
        default=["patient001", "patient002", "patient003", "patient004", "patient005"],
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for one analysis")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from CardiacMTLApps.web.process import running_app

    with running_app("--device", "cpu", "--data", args.data, timeout_s=args.timeout) as url:
        rows = []
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            page.goto(url)
            wait_text(
                page, "device-text", "t.includes('cpu') || t.includes('cuda')", int(args.timeout * 1000)
            )
            device = page.locator("#device-text").inner_text()
            for patient in args.patients:
                page.locator("#case-select").click()
                page.keyboard.press("Control+A")  # replace the shown case: the list filters as one types
                page.keyboard.type(patient)
                page.wait_for_timeout(800)
                page.locator(".v-overlay--active .v-list-item", has_text=patient).first.click()
                page.wait_for_timeout(500)
                page.locator("#load-case").click()
                wait_text(page, "status-text", f"t.startsWith('Loaded {patient}')", 60_000)
                started = time.perf_counter()
                page.locator("#analyze-button").click()
                wait_text(page, "analysis-time", "t.includes('s')", int(args.timeout * 1000))
                seen = time.perf_counter() - started
                server_s = float(page.locator("#analysis-time").inner_text().split(":")[1].split("s")[0])
                diagnosis = page.locator("#diagnosis-text").inner_text()
                status = page.locator("#status-text").inner_text()
                rows.append(
                    {
                        "patient": patient,
                        "browser_s": round(seen, 2),
                        "server_s": server_s,
                        "diagnosis": diagnosis,
                        "server_status": status,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
            browser.close()
        times = [r["browser_s"] for r in rows]
        print(
            f"device: {device}; click to diagnosis shown, median {statistics.median(times):.2f} s, "
            f"max {max(times):.2f} s over {len(times)} patients (bar: 3 s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
