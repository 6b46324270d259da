"""Browser app latency: from clicking **Segment & diagnose** to the diagnosis shown, for ten ACDC patients,
for this checkout and for another one (the code before a change) in the same run.

Starts ``cardiac-mtl app --device cpu`` of both checkouts on free local ports, drives each with headless
Chromium (``/usr/bin/chromium`` through playwright): load a patient, click the button, wait for the time of
the result. Patients alternate between the two apps (which goes first alternates too), and each waits
until the other's LV model fit is done, so neither measures while the other computes. Prints per patient
both times, then the median and max of each and their ratio.

    .venv/bin/python bench/app_latency.py --base /tmp/app-base [--patients patient001 ...] [--data DIR]

``--base`` is a checkout of the earlier code (``git clone -q . /tmp/app-base && git -C /tmp/app-base checkout -q a1a7473``); it runs with this
Python's packages and ``PYTHONPATH`` set to its ``CardiacMTL`` and ``CardiacAtlas`` folders.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PATIENTS = [f"patient{n:03d}" for n in (1, 11, 21, 31, 41, 51, 61, 71, 81, 91)]  # two of each group


def wait_text(page, element_id: str, predicate: str, timeout_ms: int) -> None:
    page.wait_for_function(
        f"() => {{ const e = document.getElementById('{element_id}'); if (!e) return false;"
        f" const t = e.textContent; return {predicate}; }}",
        timeout=timeout_ms,
    )


def click_to_result(page, patient: str, timeout_s: float) -> dict:
    """Load ``patient``, click Segment & diagnose, wait for the result; the seconds it took, both clocks."""
    page.locator("#case-select").click()
    page.keyboard.press("Control+A")  # replace the shown case: the list filters as one types
    page.keyboard.type(patient)
    page.wait_for_timeout(800)
    page.locator(".v-overlay--active .v-list-item", has_text=patient).first.click()
    page.wait_for_timeout(500)
    page.locator("#load-case").click()
    wait_text(page, "status-text", f"t.startsWith('Loaded {patient}')", 60_000)
    page.wait_for_timeout(500)
    started = time.perf_counter()
    page.locator("#analyze-button").click()
    wait_text(page, "analysis-time", "t.includes('s')", int(timeout_s * 1000))
    seen = time.perf_counter() - started
    server_s = float(page.locator("#analysis-time").inner_text().split(":")[1].split("s")[0])
    diagnosis = page.locator("#diagnosis-text").inner_text()
    # the LV model fit that follows runs in the background: let it finish before anything is measured
    wait_text(page, "lv-fit-text", "!t.includes('Fitting')", int(timeout_s * 1000))
    return {"browser_s": round(seen, 2), "server_s": server_s, "diagnosis": diagnosis}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data" / "acdc"))
    parser.add_argument("--base", required=True, help="checkout of the code to compare with")
    parser.add_argument("--patients", nargs="+", default=PATIENTS)
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for one analysis")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from CardiacMTLApps.web.process import running_app

    base = Path(args.base).resolve()
    base_env = {"PYTHONPATH": f"{base / 'CardiacMTL'}:{base / 'CardiacAtlas'}"}
    app_args = ("--device", "cpu", "--data", args.data)
    with ExitStack() as stack, sync_playwright() as p:
        urls = {
            "this": stack.enter_context(running_app(*app_args, timeout_s=args.timeout)),
            "base": stack.enter_context(running_app(*app_args, timeout_s=args.timeout, env=base_env)),
        }
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        pages = {}
        for name, url in urls.items():
            pages[name] = browser.new_page(viewport={"width": 1500, "height": 950})
            pages[name].goto(url)
            wait_text(
                pages[name],
                "device-text",
                "t.includes('cpu') || t.includes('cuda')",
                int(args.timeout * 1000),
            )
        device = pages["this"].locator("#device-text").inner_text()
        times: dict[str, list[float]] = {"this": [], "base": []}
        for n, patient in enumerate(args.patients):
            for name in ("this", "base") if n % 2 == 0 else ("base", "this"):
                row = click_to_result(pages[name], patient, args.timeout)
                times[name].append(row["browser_s"])
                print(json.dumps({"patient": patient, "code": name, **row}), flush=True)
        browser.close()
    median = {k: statistics.median(v) for k, v in times.items()}
    worst = {k: max(v) for k, v in times.items()}
    print(f"device: {device}; click to diagnosis shown over {len(args.patients)} patients:")
    for name, label in (("this", "this checkout"), ("base", f"base ({base})")):
        print(f"  {label}: median {median[name]:.2f} s, max {worst[name]:.2f} s")
    print(
        f"  ratio this/base: median {median['this'] / median['base']:.2f}, "
        f"max {worst['this'] / worst['base']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
