#!/usr/bin/env python3
"""The web console in headless Chromium, as a person uses it (driven by
crates/server/tests/api/console_browser.rs).

1. The owner signs in with a password, enrols TOTP from the page's otpauth URI (codes from pyotp,
   an independent library), signs out, is refused with a wrong code, signs in with the right one.
2. Screenshots of the overview, a visitor's journey and the export page, and of the overview at
   a phone's width (whose page must not scroll sideways).
3. Exports leads for --from..--to as CSV and as XLSX through the export form into a download
   folder, and parses both (Python csv, openpyxl) into lists of lead ids.
4. Asks for a period longer than the maximum and reads the page's message.
5. Erases --erase-email on the data-subject page, then searches the leads table for it and reads
   the audit page filtered to erasures.
6. A viewer signs in (enrols likewise) and lists the nav links, then opens the export and users
   pages directly and reads what they say.

The app's clock is fixed by the test: --now gives its Unix time, and codes are computed for it.

Prints one JSON line with what it saw, and exits 0; on any failure prints the reason on stderr
and exits 1. Chromium and chromedriver come from $STEWARD_TEST_CHROMIUM and
$STEWARD_TEST_CHROMEDRIVER (Debian's /usr/bin/chromium and /usr/bin/chromedriver by default).
"""

import argparse
import csv
import json
import os
import sys
import time
import traceback

import openpyxl
import pyotp
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


class ConsoleError(Exception):
    pass


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--owner", required=True, help="the owner's email")
    parser.add_argument("--viewer", required=True, help="the viewer's email")
    parser.add_argument("--password", required=True)
    parser.add_argument("--now", type=int, required=True, help="the app's clock, Unix seconds")
    parser.add_argument("--from", dest="from_day", required=True, help="YYYY-MM-DD")
    parser.add_argument("--to", dest="to_day", required=True, help="YYYY-MM-DD")
    parser.add_argument("--long-from", required=True)
    parser.add_argument("--long-to", required=True)
    parser.add_argument("--erase-email", required=True)
    parser.add_argument("--visitor", required=True, help="a visitor profile id with visits")
    parser.add_argument("--downloads", required=True)
    parser.add_argument("--screenshots", required=True)
    parser.add_argument("--timeout", type=float, default=30.0)
    return parser.parse_args()


def browser(downloads: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("STEWARD_TEST_CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": downloads, "download.prompt_for_download": False, "safebrowsing.enabled": False},
    )
    service = Service(executable_path=os.environ.get("STEWARD_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    return driver


class Console:
    def __init__(self, driver, args):
        self.driver = driver
        self.args = args
        self.wait = WebDriverWait(driver, args.timeout)

    def open(self, path: str):
        self.driver.get(self.args.base + path)
        self.wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

    def text(self, css: str) -> str:
        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def exists(self, css: str) -> bool:
        return len(self.driver.find_elements(By.CSS_SELECTOR, css)) > 0

    def fill(self, name: str, value: str):
        field = self.driver.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)

    def set_value(self, css: str, value: str):
        element = self.driver.find_element(By.CSS_SELECTOR, css)
        self.driver.execute_script("arguments[0].value = arguments[1];", element, value)

    def submit(self, css: str):
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.CSS_SELECTOR, css).click()
        self.wait.until(lambda d: old.id != d.find_element(By.TAG_NAME, "html").id)
        self.wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

    def sign_in_form(self, email: str, code: str):
        self.open("/console/sign-in")
        self.fill("tenant", self.args.tenant)
        self.fill("email", email)
        self.fill("password", self.args.password)
        self.fill("code", code)
        self.submit("form[action='/console/sign-in'] button[type=submit]")

    def enrol(self, email: str) -> str:
        """Signs in with the password alone and confirms TOTP; returns the otpauth URI."""
        self.sign_in_form(email, "")
        if "/console/mfa/enrol" not in self.driver.current_url:
            raise ConsoleError(f"first sign-in of {email} did not lead to enrolment: {self.driver.current_url}")
        uri = self.text("#otpauth-uri")
        self.fill("code", pyotp.parse_uri(uri).at(self.args.now))
        self.submit("form[action='/console/mfa/enrol'] button[type=submit]")
        if not self.exists("#recovery-codes"):
            raise ConsoleError("enrolment did not show recovery codes: " + self.driver.page_source[:500])
        return uri

    def sign_out(self):
        self.open("/console/account")
        self.submit("form[action='/console/sign-out'] button[type=submit]")

    def screenshot(self, name: str) -> str:
        path = os.path.join(self.args.screenshots, name)
        height = self.driver.execute_script("return Math.min(document.documentElement.scrollHeight, 4000)")
        self.driver.set_window_size(1280, max(800, int(height)))
        self.driver.save_screenshot(path)
        self.driver.set_window_size(1280, 1000)
        return path

    def download(self, fmt: str, from_day: str, to_day: str) -> str:
        before = set(os.listdir(self.args.downloads))
        self.open("/console/exports")
        self.driver.find_element(By.CSS_SELECTOR, "#dataset option[value=leads]").click()
        self.driver.find_element(By.CSS_SELECTOR, f"#format option[value={fmt}]").click()
        self.set_value("#from", from_day)
        self.set_value("#to", to_day)
        self.driver.find_element(By.ID, "export-submit").click()
        deadline = time.time() + self.args.timeout
        while time.time() < deadline:
            new = [n for n in set(os.listdir(self.args.downloads)) - before if n.endswith("." + fmt)]
            if new:
                path = os.path.join(self.args.downloads, new[0])
                time.sleep(0.3)
                return path
            time.sleep(0.2)
        raise ConsoleError(f"no {fmt} file was downloaded; page says: {self.driver.page_source[:800]}")


def csv_ids(path: str) -> list:
    with open(path, newline="", encoding="utf-8") as handle:
        return [row["id"] for row in csv.DictReader(handle)]


def xlsx_ids(path: str) -> list:
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = list(next(rows))
    column = header.index("id")
    return [row[column] for row in rows if row and row[column]]


def other_code(totp: pyotp.TOTP, now: int) -> str:
    taken = {totp.at(now + 30 * step) for step in (-1, 0, 1, 2)}
    code = 123456
    while f"{code:06d}" in taken:
        code += 1
    return f"{code:06d}"


def run(args) -> dict:
    os.makedirs(args.downloads, exist_ok=True)
    os.makedirs(args.screenshots, exist_ok=True)
    driver = browser(args.downloads)
    seen = {}
    try:
        console = Console(driver, args)
        uri = console.enrol(args.owner)
        console.sign_out()
        totp = pyotp.parse_uri(uri)
        console.sign_in_form(args.owner, other_code(totp, args.now))
        seen["wrong_code_message"] = console.text("#message") if console.exists("#message") else ""
        seen["wrong_code_url"] = driver.current_url
        # The enrolment used the current step: the next code signs in.
        console.sign_in_form(args.owner, totp.at(args.now + 30))
        seen["signed_in_url"] = driver.current_url
        seen["signed_in_role"] = console.text("#role") if console.exists("#role") else ""
        seen["overview_has_chart"] = console.exists("svg#daily-chart polyline")
        shots = [console.screenshot("overview.png")]
        console.open(f"/console/visitors/{args.visitor}")
        seen["journey_events"] = len(driver.find_elements(By.CSS_SELECTOR, "#journey li[data-event]"))
        shots.append(console.screenshot("journey.png"))
        console.open("/console/exports")
        seen["limits_text"] = console.text("#limits")
        shots.append(console.screenshot("export.png"))
        driver.set_window_size(390, 844)
        console.open("/console")
        seen["phone_scroll_width"] = driver.execute_script("return document.documentElement.scrollWidth")
        driver.save_screenshot(os.path.join(args.screenshots, "overview-phone.png"))
        shots.append(os.path.join(args.screenshots, "overview-phone.png"))
        driver.set_window_size(1280, 1000)
        seen["screenshots"] = shots

        csv_path = console.download("csv", args.from_day, args.to_day)
        xlsx_path = console.download("xlsx", args.from_day, args.to_day)
        seen["csv_ids"] = csv_ids(csv_path)
        seen["xlsx_ids"] = xlsx_ids(xlsx_path)

        console.open("/console/exports")
        console.driver.find_element(By.CSS_SELECTOR, "#dataset option[value=leads]").click()
        console.set_value("#from", args.long_from)
        console.set_value("#to", args.long_to)
        console.submit("#export-submit")
        seen["long_period_message"] = console.text("#message") if console.exists("#message") else ""
        seen["long_period_form_kept"] = driver.find_element(By.ID, "from").get_attribute("value")

        console.open("/console/leads?q=" + args.erase_email)
        seen["leads_before_erasure"] = len(driver.find_elements(By.CSS_SELECTOR, "#leads tr[data-lead-id]"))
        console.open("/console/data-subjects")
        console.fill("email", args.erase_email)
        console.submit("#find")
        seen["held_before"] = console.text("#held")
        shots.append(console.screenshot("data-subject.png"))
        driver.find_element(By.ID, "confirm-erasure").click()
        console.submit("#erase")
        seen["request_status"] = console.text("#request-status")
        console.open("/console/leads?q=" + args.erase_email)
        seen["leads_after_erasure"] = len(driver.find_elements(By.CSS_SELECTOR, "#leads tr[data-lead-id]"))
        seen["leads_table_emails_after"] = []
        path = "/console/leads"
        while path:
            console.open(path)
            seen["leads_table_emails_after"] += [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#leads td.email")]
            links = driver.find_elements(By.ID, "next-page")
            path = links[0].get_attribute("href").replace(args.base, "") if links else None
        console.open("/console/audit")
        console.fill("action", "subject_request.erased")
        console.submit("#filter")
        seen["audit_erasures"] = len(driver.find_elements(By.CSS_SELECTOR, "#audit tr[data-action='subject_request.erased']"))
        console.sign_out()

        console.enrol(args.viewer)
        console.open("/console")
        seen["viewer_nav"] = [a.get_attribute("href").replace(args.base, "") for a in driver.find_elements(By.CSS_SELECTOR, "nav[aria-label=Console] a")]
        seen["viewer_export_buttons"] = len(driver.find_elements(By.ID, "export-submit"))
        for path, key in (("/console/exports", "viewer_exports_page"), ("/console/users", "viewer_users_page"), ("/console/data-subjects", "viewer_subjects_page")):
            console.open(path)
            seen[key] = console.text("main")
        shots.append(console.screenshot("viewer-refused.png"))
        return seen
    finally:
        driver.quit()


def main() -> int:
    args = parse_args()
    try:
        print(json.dumps(run(args)))
        return 0
    except Exception as error:  # noqa: BLE001 - any failure is reported and fails the test
        traceback.print_exc()
        print(f"console browser run failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
