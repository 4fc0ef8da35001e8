//! Upload, poll, download: the service's outputs are the CLI's outputs.

use super::support::*;
use std::time::Duration;

fn cli_convert(input: &std::path::Path, out: &std::path::Path) {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_modelguard"))
        .args(["convert", "-q"])
        .arg(input)
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_converted_job_serves_the_clis_safetensors_and_reports_but_never_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &["--jobs", "2"]);
    let agent = agent();
    let input = fixtures().join("models/sd_sequential.pt");
    let bytes = std::fs::read(&input).unwrap();
    let accepted = post_form(
        &agent,
        &server,
        ALICE,
        &[
            ("file", Part::File("sd_sequential.pt", &bytes)),
            ("source", Part::Text("hf://org/name@main")),
        ],
    );
    assert_eq!(
        accepted.status,
        202,
        "{}",
        String::from_utf8_lossy(&accepted.body)
    );
    let body = accepted.json();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(
        accepted.header("location"),
        Some(format!("/v1/jobs/{id}").as_str())
    );
    assert_eq!(body["sha256"], sha256(&bytes), "hashed on the way in");
    assert_eq!(body["bytes"], bytes.len() as u64);

    let job = wait_terminal(&agent, &server, ALICE, &id, Duration::from_secs(120));
    assert_eq!(job["state"], "converted", "{job}");
    assert_eq!(job["verdict"], "clean");
    assert_eq!(job["source"], "hf://org/name@main");
    assert_eq!(job["name"], "sd_sequential.pt");
    let names: Vec<&str> = job["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "bom.cdx.json",
            "model.safetensors",
            "report.json",
            "report.sarif"
        ]
    );

    let model = get(
        &agent,
        &server.url(&format!("/v1/jobs/{id}/artifacts/model.safetensors")),
        Some(ALICE),
    );
    assert_eq!(model.status, 200);
    let cli_out = tmp.path().join("cli.safetensors");
    cli_convert(&input, &cli_out);
    assert!(
        model.body == std::fs::read(&cli_out).unwrap(),
        "the service's safetensors differ from the CLI's"
    );
    let report = get(
        &agent,
        &server.url(&format!("/v1/jobs/{id}/artifacts/report.json")),
        Some(ALICE),
    )
    .json();
    assert_eq!(report["input_sha256"], sha256(&bytes));
    assert_eq!(
        report["input"], "sd_sequential.pt",
        "reports show the upload's name, not server paths"
    );
    assert!(!report.to_string().contains(server.data.to_str().unwrap()));
    // The BOM names the served model by its hash and the upload's source by its purl.
    let bom = get(
        &agent,
        &server.url(&format!("/v1/jobs/{id}/artifacts/bom.cdx.json")),
        Some(ALICE),
    )
    .json();
    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(
        bom["metadata"]["component"]["hashes"][0]["content"],
        sha256(&model.body)
    );
    let ancestor = &bom["metadata"]["component"]["pedigree"]["ancestors"][0];
    assert_eq!(ancestor["purl"], "pkg:huggingface/org/name@main");
    assert_eq!(ancestor["hashes"][0]["content"], sha256(&bytes));
    let sarif = get(
        &agent,
        &server.url(&format!("/v1/jobs/{id}/artifacts/report.sarif")),
        Some(ALICE),
    );
    assert_eq!(sarif.header("content-type"), Some("application/sarif+json"));
    assert_eq!(sarif.json()["version"], "2.1.0");

    // The original exists on disk, 0600, and no route serves it.
    let original = server.data.join("quarantine").join(&id).join("model");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&original).unwrap().permissions().mode() & 0o777,
        0o600
    );
    for path in [
        format!("/v1/jobs/{id}/artifacts/model"),
        format!("/v1/jobs/{id}/artifacts/sd_sequential.pt"),
        format!("/v1/jobs/{id}/artifacts/..%2f..%2fquarantine%2f{id}%2fmodel"),
        format!("/v1/jobs/{id}/artifacts/%2e%2e"),
        format!("/v1/jobs/{id}/original"),
        format!("/quarantine/{id}/model"),
    ] {
        let r = get(&agent, &server.url(&path), Some(ADMIN));
        assert_eq!(r.status, 404, "{path}");
        assert!(r.body != bytes, "{path} served the original");
    }

    // Listing: alice sees her job, bob does not; paging works.
    let list = get(&agent, &server.url("/v1/jobs?state=converted"), Some(ALICE)).json();
    assert_eq!(list["jobs"][0]["id"], id.as_str());
    let list = get(&agent, &server.url("/v1/jobs"), Some(BOB)).json();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 0);

    // The log has one line per state change with the job id.
    let states: Vec<String> = server
        .logs()
        .iter()
        .filter(|l| l["message"] == "job state" && l["job_id"] == id.as_str())
        .map(|l| l["state"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(states, ["queued", "running", "converted"]);
}

#[test]
fn a_malicious_upload_is_refused_with_findings_and_no_model() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let agent = agent();
    let bytes = std::fs::read(fixtures().join("malicious/files/t01_os_system_proto4.pkl")).unwrap();
    let id = submit(&agent, &server, ALICE, "innocent.pt", &bytes).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = wait_terminal(&agent, &server, ALICE, &id, Duration::from_secs(120));
    assert_eq!(job["state"], "refused", "{job}");
    assert_eq!(job["verdict"], "malicious");
    assert!(
        job["findings"]["critical"].as_u64().unwrap_or(0)
            + job["findings"]["high"].as_u64().unwrap_or(0)
            > 0,
        "{job}"
    );
    let names: Vec<&str> = job["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bom.cdx.json", "report.json", "report.sarif"]);
    let r = get(
        &agent,
        &server.url(&format!("/v1/jobs/{id}/artifacts/model.safetensors")),
        Some(ALICE),
    );
    assert_eq!(r.status, 404);
    let sarif = get(
        &agent,
        &server.url(&format!("/v1/jobs/{id}/artifacts/report.sarif")),
        Some(ALICE),
    )
    .json();
    assert!(!sarif["runs"][0]["results"].as_array().unwrap().is_empty());
}

#[test]
fn a_malformed_upload_fails_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let agent = agent();
    let mut bytes = std::fs::read(fixtures().join("models/sd_sequential.pt")).unwrap();
    bytes.truncate(bytes.len() / 2);
    let id = submit(&agent, &server, ALICE, "cut.pt", &bytes).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = wait_terminal(&agent, &server, ALICE, &id, Duration::from_secs(120));
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        !error.is_empty() && !error.contains(server.data.to_str().unwrap()),
        "{error}"
    );
    let r = get(
        &agent,
        &server.url(&format!("/v1/jobs/{id}/artifacts/model.safetensors")),
        Some(ALICE),
    );
    assert_eq!(r.status, 404);
}

fn shard_files() -> Vec<(String, Vec<u8>)> {
    let dir = fixtures().join("models/hf_sharded");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn check_sharded(agent: &ureq::Agent, server: &Server, id: &str, tmp: &std::path::Path) {
    let job = wait_terminal(agent, server, ALICE, id, Duration::from_secs(120));
    assert_eq!(job["state"], "converted", "{job}");
    let cli = tmp.join("cli-out");
    cli_convert(&fixtures().join("models/hf_sharded"), &cli);
    let mut expected: Vec<String> = std::fs::read_dir(&cli)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    expected.extend(["bom.cdx.json", "report.json", "report.sarif"].map(String::from));
    expected.sort();
    let names: Vec<String> = job["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, expected);
    for name in std::fs::read_dir(&cli).unwrap() {
        let name = name.unwrap().file_name().to_string_lossy().into_owned();
        let served = get(
            agent,
            &server.url(&format!("/v1/jobs/{id}/artifacts/{name}")),
            Some(ALICE),
        );
        assert_eq!(served.status, 200);
        assert!(
            served.body == std::fs::read(cli.join(&name)).unwrap(),
            "{name} differs from the CLI's"
        );
    }
}

#[test]
fn a_sharded_folder_converts_from_several_files_and_from_a_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let agent = agent();
    let files = shard_files();
    let parts: Vec<(&str, Part<'_>)> = files
        .iter()
        .map(|(n, d)| ("file", Part::File(n.as_str(), d.as_slice())))
        .collect();
    let r = post_form(&agent, &server, ALICE, &parts);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    check_sharded(
        &agent,
        &server,
        r.json()["id"].as_str().unwrap(),
        tmp.path(),
    );

    // The same folder as a tar, the way `tar -cf x.tar folder` makes it.
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_dir_all("hf_sharded", fixtures().join("models/hf_sharded"))
        .unwrap();
    let tar_bytes = builder.into_inner().unwrap();
    let r = post_form(
        &agent,
        &server,
        ALICE,
        &[("folder_tar", Part::File("hf_sharded.tar", &tar_bytes))],
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    std::fs::remove_dir_all(tmp.path().join("cli-out")).unwrap();
    check_sharded(
        &agent,
        &server,
        r.json()["id"].as_str().unwrap(),
        tmp.path(),
    );
}

#[test]
fn the_openapi_document_is_3_1_and_names_every_route() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let agent = agent();
    let doc = get(&agent, &server.url("/openapi.json"), None).json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/artifacts/{name}",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc["paths"]["/v1/jobs"]["post"].is_object());
    assert!(doc["paths"]["/v1/jobs/{id}"]["delete"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(get(&agent, &server.url("/healthz"), None).status, 200);
    assert_eq!(get(&agent, &server.url("/readyz"), None).status, 200);
    let page = get(&agent, &server.url("/"), None);
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
}

#[test]
fn metrics_count_jobs_bytes_findings_durations_and_worker_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let agent = agent();
    let good = std::fs::read(fixtures().join("models/sd_sequential.pt")).unwrap();
    let bad = std::fs::read(fixtures().join("malicious/files/t01_os_system_proto4.pkl")).unwrap();
    for (name, data) in [("good.pt", &good), ("bad.pkl", &bad)] {
        let id = submit(&agent, &server, ALICE, name, data).json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        wait_terminal(&agent, &server, ALICE, &id, Duration::from_secs(120));
    }
    let r = get(&agent, &server.url("/metrics"), Some(ADMIN));
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).unwrap();
    let value = |needle: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{needle} not in\n{text}"))
    };
    assert_eq!(value("modelguard_jobs{state=\"converted\"}"), 1.0);
    assert_eq!(value("modelguard_jobs{state=\"refused\"}"), 1.0);
    assert_eq!(
        value("modelguard_upload_bytes_total"),
        (good.len() + bad.len()) as f64
    );
    let findings: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("modelguard_findings_total{severity=\"critical\"}")
                || l.starts_with("modelguard_findings_total{severity=\"high\"}")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(findings >= 1.0, "{text}");
    drop(server);

    // A worker the jail kills (a wall-clock limit of 0 s) fails the job and is counted.
    let server = Server::start(&tmp.path().join("data2"), &["--timeout", "0"]);
    let id = submit(&agent, &server, ALICE, "good.pt", &good).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = wait_terminal(&agent, &server, ALICE, &id, Duration::from_secs(120));
    assert_eq!(job["state"], "failed");
    assert!(
        job["error"].as_str().unwrap().contains("wall-clock limit"),
        "{job}"
    );
    let text = String::from_utf8(get(&agent, &server.url("/metrics"), Some(ADMIN)).body).unwrap();
    assert!(
        text.contains("modelguard_worker_kills_total{reason=\"timeout\"} 1"),
        "{text}"
    );
    assert_eq!(
        value("modelguard_job_duration_seconds_count{state=\"converted\"}"),
        1.0
    );
}

#[test]
fn retention_deletes_originals_then_artifacts_and_keeps_the_record() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A token made by `modelguard token`, as an operator would.
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_modelguard"))
        .args(["token", "--name", "carol", "--role", "submit"])
        .output()
        .unwrap();
    assert!(made.status.success());
    let entry = String::from_utf8(made.stdout).unwrap();
    let stderr = String::from_utf8(made.stderr).unwrap();
    let token = stderr.rsplit(' ').next().unwrap().trim().to_string();
    assert!(
        token.starts_with("mg_") && !entry.contains(&token),
        "{entry}"
    );

    let tokens = data.with_extension("tokens.toml");
    write_tokens(&tokens);
    std::fs::write(&tokens, std::fs::read_to_string(&tokens).unwrap() + &entry).unwrap();
    let server = Server::start(&data, &[]);
    let agent = agent();
    let bytes = std::fs::read(fixtures().join("models/sd_sequential.pt")).unwrap();
    let id = submit(&agent, &server, &token, "m.pt", &bytes).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = wait_terminal(&agent, &server, &token, &id, Duration::from_secs(120));
    assert_eq!(job["state"], "converted");
    drop(server);

    // Originals expire first: the model is still served.
    let server = Server::start(&data, &["--keep-originals", "0s"]);
    let job = get(&agent, &server.url(&format!("/v1/jobs/{id}")), Some(&token)).json();
    assert_eq!(job["original_deleted"], true, "{job}");
    assert!(!data.join("quarantine").join(&id).exists());
    let model_url = server.url(&format!("/v1/jobs/{id}/artifacts/model.safetensors"));
    assert_eq!(get(&agent, &model_url, Some(&token)).status, 200);
    drop(server);

    // Then the artifacts; the job's record stays.
    let server = Server::start(&data, &["--keep-artifacts", "0s"]);
    let job = get(&agent, &server.url(&format!("/v1/jobs/{id}")), Some(&token)).json();
    assert_eq!(job["artifacts_deleted"], true, "{job}");
    assert_eq!(job["state"], "converted");
    assert_eq!(job["artifacts"].as_array().unwrap().len(), 0);
    let model_url = server.url(&format!("/v1/jobs/{id}/artifacts/model.safetensors"));
    assert_eq!(get(&agent, &model_url, Some(&token)).status, 404);
    assert!(!data.join("artifacts").join(&id).exists());
}

#[test]
fn a_look_alike_source_is_refused_unread_and_a_malformed_one_is_a_bad_request() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let agent = agent();
    let bytes = std::fs::read(fixtures().join("models/sd_sequential.pt")).unwrap();
    let r = post_form(
        &agent,
        &server,
        ALICE,
        &[
            ("file", Part::File("gpt-j.pt", &bytes)),
            ("source", Part::Text("hf://EleuterAI/gpt-j-6B")),
        ],
    );
    assert_eq!(r.status, 202);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let job = wait_terminal(&agent, &server, ALICE, &id, Duration::from_secs(120));
    assert_eq!(job["state"], "refused", "{job}");
    let report = get(
        &agent,
        &server.url(&format!("/v1/jobs/{id}/artifacts/report.json")),
        Some(ALICE),
    )
    .json();
    let findings = report["findings"].to_string();
    assert!(
        findings.contains("MG020") && findings.contains("EleutherAI"),
        "{report}"
    );
    let r = post_form(
        &agent,
        &server,
        ALICE,
        &[
            ("file", Part::File("m.pt", &bytes)),
            ("source", Part::Text("hf://a/b/c")),
        ],
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.problem(), "urn:modelguard:problem:invalid-upload");
}
