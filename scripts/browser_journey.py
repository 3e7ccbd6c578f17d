#!/usr/bin/env python3
"""A visitor's journey through the test site (crates/cli/tests/site) in headless Chromium.

Opens the start URL (page 1), follows the link with id `next` on pages 1 and 2, fills the form on
page 3 (`first_name`, `last_name`, `email`, `consent`), clicks `submit` and waits until the page
sets `document.body.dataset.done = "1"` (after `steward.lead(...)` and `steward.flush()`). Then it
opens about:blank, which fires `pagehide` (the tracker flushes its beacons there), and waits a
second for the beacons to leave before quitting. Every page must load the tracker: the journey
waits for `window.steward._steward` on each one before going on.

Prints one JSON line: {"visited": [urls], "visitor_id": localStorage steward_vid on page 3 (null
when cookieless), "user_agent": navigator.userAgent}, and exits 0; on any failure prints the reason
on stderr and exits 1.

Chromium and chromedriver come from $STEWARD_TEST_CHROMIUM and $STEWARD_TEST_CHROMEDRIVER (Debian's
/usr/bin/chromium and /usr/bin/chromedriver by default), so Selenium Manager never downloads anything.

Usage: browser_journey.py --start URL [--host-rules "MAP shop.test 127.0.0.1"] [--timeout 30]
                          [--gpc] [--user-agent UA] [--first-name Ada] [--last-name Lovelace]
                          [--email ada@example.com] [--no-consent]
"""

import argparse
import json
import os
import sys
import time
import traceback

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

# Navigator.globalPrivacyControl = true before any page script runs (for --gpc).
GPC_SCRIPT = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true, configurable: true});"
# True once the page has loaded and run the tracker; also true on Chromium's error page, to stop waiting.
TRACKER_LOADED = (
    "return location.href.startsWith('chrome-error:') || "
    "(document.readyState === 'complete' && !!(window.steward && window.steward._steward));"
)


class JourneyError(Exception):
    pass


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", required=True, help="URL of page 1 of the test site")
    parser.add_argument("--host-rules", default="", help='Chromium --host-resolver-rules, e.g. "MAP shop.test 127.0.0.1"')
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds for each page or wait (default 30)")
    parser.add_argument("--gpc", action="store_true", help="send Global Privacy Control (navigator.globalPrivacyControl)")
    parser.add_argument("--user-agent", default="", help="override the browser's User-Agent")
    parser.add_argument("--first-name", default="Ada")
    parser.add_argument("--last-name", default="Lovelace")
    parser.add_argument("--email", default="ada@example.com")
    parser.add_argument("--no-consent", action="store_true", help="leave the marketing consent box unticked")
    return parser.parse_args()


def start_browser(args: argparse.Namespace) -> webdriver.Chrome:
    chromium = os.environ.get("STEWARD_TEST_CHROMIUM") or "/usr/bin/chromium"
    chromedriver = os.environ.get("STEWARD_TEST_CHROMEDRIVER") or "/usr/bin/chromedriver"
    for what, path in (("Chromium", chromium), ("chromedriver", chromedriver)):
        if not os.access(path, os.X_OK):
            raise JourneyError(f"{what} not found at {path} (run scripts/test, or apt-get install chromium chromium-driver)")

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,MediaRouter,OptimizationHints,Translate",
        "--window-size=1280,900",
    ):
        options.add_argument(arg)
    if args.host_rules:
        options.add_argument(f"--host-resolver-rules={args.host_rules}")
    if args.user_agent:
        options.add_argument(f"--user-agent={args.user_agent}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})

    service = Service(executable_path=chromedriver, log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(args.timeout)
    driver.set_script_timeout(args.timeout)
    if args.gpc:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": GPC_SCRIPT})
    return driver


def wait_for_tracker(driver: webdriver.Chrome, timeout: float, page: int) -> None:
    cause = None
    try:
        WebDriverWait(driver, timeout).until(lambda d: d.execute_script(TRACKER_LOADED))
    except Exception as err:
        cause = err
    try:
        shown, text = driver.execute_script("return [location.href, (document.body || {}).innerText || ''];")
    except Exception:
        shown, text = "", ""
    if shown.startswith("chrome-error:"):
        summary = " ".join(text.split())[:300]
        raise JourneyError(f"page {page} ({driver.current_url}) could not be loaded: {summary}") from cause
    if cause is not None:
        raise JourneyError(
            f"page {page} ({driver.current_url}) did not finish loading the tracker within {timeout}s "
            "(window.steward._steward never appeared: is {{TRACKER}} served?)"
        ) from cause


def follow_next(driver: webdriver.Chrome, timeout: float, page: int) -> None:
    try:
        link = WebDriverWait(driver, timeout).until(expected_conditions.element_to_be_clickable((By.ID, "next")))
    except Exception as err:
        raise JourneyError(f"page {page} ({driver.current_url}) has no clickable link with id 'next'") from err
    link.click()
    try:
        WebDriverWait(driver, timeout).until(expected_conditions.staleness_of(link))
    except Exception as err:
        raise JourneyError(f"clicking 'next' on page {page} did not leave {driver.current_url}") from err


def journey(driver: webdriver.Chrome, args: argparse.Namespace) -> dict:
    visited = []
    driver.get(args.start)
    for page in (1, 2):
        wait_for_tracker(driver, args.timeout, page)
        visited.append(driver.current_url)
        follow_next(driver, args.timeout, page)

    wait_for_tracker(driver, args.timeout, 3)
    visited.append(driver.current_url)
    try:
        for field, value in (("first_name", args.first_name), ("last_name", args.last_name), ("email", args.email)):
            box = driver.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        consent = driver.find_element(By.ID, "consent")
        if consent.is_selected() == args.no_consent:
            consent.click()
        driver.find_element(By.ID, "submit").click()
    except Exception as err:
        raise JourneyError(f"could not fill or submit the form on page 3 ({driver.current_url}): {err}") from err
    try:
        WebDriverWait(driver, args.timeout).until(
            lambda d: d.execute_script("return document.body && document.body.dataset.done === '1';")
        )
    except Exception as err:
        raise JourneyError(f"page 3 never set document.body.dataset.done = '1' within {args.timeout}s") from err

    visitor_id = driver.execute_script("try { return localStorage.getItem('steward_vid'); } catch (e) { return null; }")
    user_agent = driver.execute_script("return navigator.userAgent;")

    # Leaving the page fires pagehide: the tracker sends whatever it still holds as beacons.
    driver.get("about:blank")
    time.sleep(1.0)
    return {"visited": visited, "visitor_id": visitor_id, "user_agent": user_agent}


def browser_log(driver: webdriver.Chrome) -> str:
    try:
        return "\n".join(f"  {entry.get('level')}: {entry.get('message')}" for entry in driver.get_log("browser"))
    except Exception:
        return ""


def main() -> int:
    try:
        args = parse_args()
    except SystemExit as stop:
        return 0 if stop.code in (0, None) else 1
    driver = None
    try:
        driver = start_browser(args)
        report = journey(driver, args)
    except Exception as err:
        reason = str(err) if isinstance(err, JourneyError) else "".join(traceback.format_exception(err)).rstrip()
        print(f"browser_journey: {reason}", file=sys.stderr)
        if isinstance(err, JourneyError) and err.__cause__ is not None:
            print(f"  caused by: {type(err.__cause__).__name__}: {str(err.__cause__).strip()[:500]}", file=sys.stderr)
        log = browser_log(driver) if driver is not None else ""
        if log:
            print(f"browser console:\n{log}", file=sys.stderr)
        return 1
    finally:
        if driver is not None:
            try:
                driver.quit()
            except Exception:
                pass
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
