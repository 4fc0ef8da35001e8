"""Drive the service's web page in headless Chromium (Debian's chromium + chromedriver).

usage: browser.py BASE_URL TOKEN MODEL_FILE DOWNLOAD_DIR

Uploads MODEL_FILE through the page, waits for the job to reach a terminal state, clicks the
model.safetensors download and waits for the file. Prints the final state and the findings
table as JSON; the Rust test checks the downloaded bytes.
"""
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait


def main(base, token, model, downloads):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": downloads, "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(base + "/")
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.ID, "file").send_keys(model)
        driver.find_element(By.ID, "submit").click()
        wait = WebDriverWait(driver, 120)
        # The page writes "Job <state>." into #status only after the findings table is filled
        # (#job-state changes first, while the report is still being fetched).
        wait.until(
            lambda d: d.find_element(By.ID, "status").text
            in ("Job converted.", "Job refused.", "Job failed.")
        )
        state = driver.find_element(By.ID, "job-state").text
        findings = [
            [td.text for td in row.find_elements(By.TAG_NAME, "td")]
            for row in driver.find_elements(By.CSS_SELECTOR, "#findings tbody tr")
        ]
        artifacts = [b.text for b in driver.find_elements(By.CSS_SELECTOR, "#artifacts button")]
        if "model.safetensors" in artifacts:
            button = driver.find_element(By.CSS_SELECTOR, "button[data-artifact='model.safetensors']")
            wait.until(ec.element_to_be_clickable(button))
            button.click()
            target = os.path.join(downloads, "model.safetensors")
            deadline = time.time() + 60
            while not os.path.exists(target) and time.time() < deadline:
                time.sleep(0.1)
        # Script errors on the page (CSP violations included) fail the test.
        errors = [
            e["message"]
            for e in driver.get_log("browser")
            if e.get("level") == "SEVERE" and "favicon" not in e["message"]
        ]
        injected = len(driver.find_elements(By.CSS_SELECTOR, "#findings img, #job img"))
        print(
            json.dumps(
                {
                    "state": state,
                    "findings": findings,
                    "artifacts": artifacts,
                    "errors": errors,
                    "title": driver.title,
                    "injected_elements": injected,
                }
            )
        )
    finally:
        driver.quit()


if __name__ == "__main__":
    main(*sys.argv[1:5])
