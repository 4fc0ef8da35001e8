//! The web page at `/` in headless Chromium: upload, watch, download.

use super::support::*;
use std::path::Path;
use std::process::Command;

/// Chromium, chromedriver and selenium are installed by tests/run.sh; outside CI a machine
/// without them skips with the reason.
fn browser_available() -> bool {
    let ok = Path::new("/usr/bin/chromium").exists()
        && Path::new("/usr/bin/chromedriver").exists()
        && Command::new("python3")
            .args(["-c", "import selenium"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have chromium, chromedriver and selenium (tests/run.sh installs them)"
        );
        eprintln!("skipped: the browser test needs /usr/bin/chromium, /usr/bin/chromedriver and python3 selenium (tests/run.sh installs them)");
    }
    ok
}

fn drive(server: &Server, token: &str, model: &Path, downloads: &Path) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/service/browser.py"))
        .arg(&server.base)
        .arg(token)
        .arg(model)
        .arg(downloads)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "browser.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_page_uploads_a_model_shows_the_verdict_and_downloads_the_safetensors() {
    if !browser_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let model = fixtures().join("models/sd_sequential.pt");
    let result = drive(&server, ALICE, &model, &downloads);
    assert_eq!(result["state"], "converted", "{result}");
    assert_eq!(result["errors"].as_array().unwrap().len(), 0, "{result}");
    let downloaded =
        std::fs::read(downloads.join("model.safetensors")).expect("the download arrived");
    let cli = tmp.path().join("cli.safetensors");
    assert!(Command::new(env!("CARGO_BIN_EXE_modelguard"))
        .args(["convert", "-q"])
        .arg(&model)
        .arg(&cli)
        .status()
        .unwrap()
        .success());
    assert!(
        downloaded == std::fs::read(&cli).unwrap(),
        "the page's download differs from the CLI's output"
    );

    // A malicious upload whose global is HTML: the findings show it as text, nothing runs, and
    // no model is offered.
    let downloads = tmp.path().join("downloads2");
    std::fs::create_dir(&downloads).unwrap();
    let hostile = tmp.path().join("xss.pkl");
    std::fs::write(
        &hostile,
        b"\x80\x02c<img src=x onerror=document.title='pwned'>\nfoo\n)R.",
    )
    .unwrap();
    let result = drive(&server, BOB, &hostile, &downloads);
    assert_eq!(result["state"], "refused", "{result}");
    let findings = result["findings"].to_string();
    assert!(findings.contains("<img src=x onerror="), "{result}");
    assert_eq!(result["injected_elements"], 0, "{result}");
    assert_eq!(result["title"], "modelguard quarantine", "{result}");
    assert!(!result["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "model.safetensors"));
}
