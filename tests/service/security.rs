//! Access control and hostile requests.

use super::support::*;
use std::time::Duration;

fn fixture() -> Vec<u8> {
    std::fs::read(fixtures().join("models/sd_sequential.pt")).unwrap()
}

#[test]
fn tokens_and_roles_decide_who_sees_and_deletes_what() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let agent = agent();
    let bytes = fixture();

    // No token, a wrong token, another scheme: 401 with a bearer challenge.
    let (ct, body) = multipart(&[("file", Part::File("m.pt", &bytes))]);
    let r = agent
        .post(server.url("/v1/jobs"))
        .header("Content-Type", ct.clone())
        .send(&body[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer");
    for auth in [
        "Bearer mg_not_a_token",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer ",
        ADMIN,
    ] {
        let r = agent
            .get(server.url("/v1/jobs"))
            .header("Authorization", auth)
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{auth}");
    }
    assert_eq!(
        get(&agent, &server.url("/v1/jobs"), None).problem(),
        "urn:modelguard:problem:unauthorized"
    );

    let id = submit(&agent, &server, ALICE, "m.pt", &bytes).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_terminal(&agent, &server, ALICE, &id, Duration::from_secs(120));
    let job_url = server.url(&format!("/v1/jobs/{id}"));
    let model_url = server.url(&format!("/v1/jobs/{id}/artifacts/model.safetensors"));

    // Someone else's job looks like no job at all.
    for url in [&job_url, &model_url] {
        let r = get(&agent, url, Some(BOB));
        assert_eq!(r.status, 404, "{url}");
        assert_eq!(r.problem(), "urn:modelguard:problem:not-found");
        assert_eq!(get(&agent, url, None).status, 401);
    }
    // Submitters neither delete nor read metrics; admins read and delete everything.
    assert_eq!(delete(&agent, &job_url, ALICE).status, 403);
    assert_eq!(delete(&agent, &job_url, BOB).status, 403);
    assert_eq!(
        get(&agent, &server.url("/metrics"), Some(ALICE)).status,
        403
    );
    assert_eq!(get(&agent, &job_url, Some(ADMIN)).status, 200);
    assert_eq!(get(&agent, &model_url, Some(ADMIN)).status, 200);
    assert_eq!(
        get(&agent, &server.url("/v1/jobs"), Some(ADMIN)).json()["jobs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(delete(&agent, &job_url, ADMIN).status, 204);
    assert_eq!(get(&agent, &job_url, Some(ALICE)).status, 404);
    assert_eq!(get(&agent, &model_url, Some(ADMIN)).status, 404);
    assert!(
        !server.data.join("quarantine").join(&id).exists(),
        "the original is deleted"
    );
    assert!(
        !server.data.join("artifacts").join(&id).exists(),
        "the artifacts are deleted"
    );
}

#[test]
fn names_that_could_escape_are_refused_and_nothing_lands_outside_the_data_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let agent = agent();
    let bytes = fixture();
    for name in [
        "../../etc/passwd",
        "/etc/passwd",
        "..",
        ".hidden",
        "a/b.pt",
        "a\\b.pt",
        "nul\0.pt",
        "line\nbreak.pt",
    ] {
        let r = post_form(
            &agent,
            &server,
            ALICE,
            &[("file", Part::File(name, &bytes))],
        );
        assert_eq!(
            r.status,
            400,
            "{name:?}: {}",
            String::from_utf8_lossy(&r.body)
        );
        // NUL and line breaks cannot even travel in a multipart header: the transport refuses them.
        let expected = if name.contains(['\0', '\n']) {
            "urn:modelguard:problem:invalid-upload"
        } else {
            "urn:modelguard:problem:invalid-name"
        };
        assert_eq!(r.problem(), expected, "{name:?}");
        let r = post_form(
            &agent,
            &server,
            ALICE,
            &[
                ("file", Part::File("m.pt", &bytes)),
                ("name", Part::Text(name)),
            ],
        );
        assert_eq!(r.status, 400, "name field {name:?}");
    }
    // A folder tar with a path out of the folder, a symlink, or a nested path.
    let mut evil = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    // `append_data` would refuse `..`; write the name bytes directly, as an attacker would.
    header.as_old_mut().name[..16].copy_from_slice(b"../../evil.bin\0\0");
    header.set_cksum();
    evil.append(&header, &b"evil"[..]).unwrap();
    let evil = evil.into_inner().unwrap();
    let mut link = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    link.append_link(&mut h, "pytorch_model.bin", "/etc/passwd")
        .unwrap();
    let link = link.into_inner().unwrap();
    let mut nested = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    nested
        .append_data(&mut h, "a/b/c.bin", &b"data"[..])
        .unwrap();
    let nested = nested.into_inner().unwrap();
    for (what, tar_bytes) in [("dot-dot", &evil), ("symlink", &link), ("nested", &nested)] {
        let r = post_form(
            &agent,
            &server,
            ALICE,
            &[("folder_tar", Part::File("f.tar", tar_bytes))],
        );
        assert_eq!(
            r.status,
            400,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    assert!(!tmp.path().join("evil.bin").exists() && !server.data.join("evil.bin").exists());
    // Refused uploads leave nothing behind.
    let incoming: Vec<_> = std::fs::read_dir(server.data.join("quarantine/.incoming"))
        .unwrap()
        .collect();
    assert!(incoming.is_empty(), "{incoming:?}");
    let quarantined: Vec<_> = std::fs::read_dir(server.data.join("quarantine"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != ".incoming")
        .collect();
    assert!(quarantined.is_empty(), "{quarantined:?}");
}

#[test]
fn oversize_slow_and_bloated_requests_are_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        &tmp.path().join("data"),
        &["--max-upload", "1M", "--upload-idle-timeout", "2"],
    );
    let agent = agent();
    // Over the upload limit.
    let big = vec![0u8; 3 << 20];
    let r = submit(&agent, &server, ALICE, "big.pt", &big);
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    // A client that stops sending in the middle of the body.
    let (ct, body) = multipart(&[("file", Part::File("m.pt", &fixture()))]);
    let mut request = format!(
        "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ALICE}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body[..body.len() / 2]);
    let started = std::time::Instant::now();
    let (status, text) = raw(&server.addr, &request);
    assert_eq!(status, 408, "{text}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // Headers larger than the limit.
    let huge = "x".repeat(20 << 10);
    let (status, _) = raw(
        &server.addr,
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {huge}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(status, 431);
    // A body on a route that takes none is limited too.
    let (status, _) = raw(
        &server.addr,
        format!(
            "GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ALICE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            1 << 20
        )
        .as_bytes(),
    );
    assert!(status == 413 || status == 200, "{status}");
    // Nothing was accepted.
    let list = get(&agent, &server.url("/v1/jobs"), Some(ADMIN)).json();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 0);
}

#[test]
fn a_token_over_its_rate_or_a_full_queue_gets_429_with_retry_after() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &["--rate-limit", "6"]);
    let agent = agent();
    let statuses: Vec<u16> = (0..10)
        .map(|_| get(&agent, &server.url("/v1/jobs"), Some(BOB)).status)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    let r = get(&agent, &server.url("/v1/jobs"), Some(BOB));
    assert_eq!(r.problem(), "urn:modelguard:problem:rate-limited");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    // Another token is not affected.
    assert_eq!(
        get(&agent, &server.url("/v1/jobs"), Some(ALICE)).status,
        200
    );
    drop(server);

    // A queue of one and one slot: of twelve uploads sent at once, some find it full.
    let server = Server::start(&tmp.path().join("data2"), &["--queue", "1", "--jobs", "1"]);
    let numel: u64 = 4 << 20;
    let storage: Vec<u8> = (0..numel * 4).map(|i| (i % 13) as u8).collect();
    let bytes = crate::common::torch_zip(
        &crate::common::state_dict_pickle(numel, 0, &[numel as i64], &[1]),
        &storage,
    );
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                scope.spawn(|| submit(&super::support::agent(), &server, ALICE, "m.pt", &bytes))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&429) && statuses.contains(&202),
        "{statuses:?}"
    );
    for r in replies.iter().filter(|r| r.status == 429) {
        assert_eq!(r.problem(), "urn:modelguard:problem:queue-full");
        assert!(r.header("retry-after").is_some());
    }
}

#[test]
fn the_service_refuses_to_parse_uploads_in_process_or_without_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = tmp.path().join("tokens.toml");
    write_tokens(&tokens);
    let empty = tmp.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    for (tokens, extra) in [(&tokens, "none"), (&empty, "native")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_modelguard"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--sandbox",
                extra,
                "--data-dir",
            ])
            .arg(tmp.path().join("data"))
            .arg("--tokens")
            .arg(tokens)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("listening"));
    }
}
