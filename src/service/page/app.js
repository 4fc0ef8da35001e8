// The quarantine page: upload, poll the job, show findings, download artifacts.
// Everything from the server (names, messages, globals) is untrusted text: it is only ever
// put into the page with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let token = "";

function auth() {
  return { Authorization: "Bearer " + token };
}

async function problemText(res) {
  try {
    const p = await res.json();
    return p.title + ": " + p.detail;
  } catch (_) {
    return "HTTP " + res.status;
  }
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
}

async function download(url, name) {
  const res = await fetch(url, { headers: auth() });
  if (!res.ok) {
    $("status").textContent = await problemText(res);
    return;
  }
  const blob = await res.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
}

async function showFindings(job) {
  const body = $("findings").querySelector("tbody");
  body.replaceChildren();
  if (!job.artifacts.some((a) => a.name === "report.json")) return;
  const res = await fetch("/v1/jobs/" + job.id + "/artifacts/report.json", { headers: auth() });
  if (!res.ok) return;
  const report = await res.json();
  const files = report.files && report.files.length ? report.files : [report];
  for (const f of files) {
    for (const finding of f.findings || []) {
      const row = document.createElement("tr");
      cell(row, finding.severity);
      cell(row, finding.rule);
      cell(row, finding.message);
      body.appendChild(row);
    }
  }
}

function showJob(job) {
  $("job").hidden = false;
  $("job-id").textContent = job.id;
  $("job-state").textContent = job.state;
  $("job-state").className = job.state;
  $("job-progress").value = job.progress.step;
  $("job-phase").textContent = job.progress.phase;
  $("job-verdict").textContent = job.verdict || "";
  $("job-error").textContent = job.error || "";
  $("job-sha").textContent = job.sha256;
  const list = $("artifacts");
  list.replaceChildren();
  for (const a of job.artifacts) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = a.name;
    button.dataset.artifact = a.name;
    button.addEventListener("click", () => download(a.url, a.name));
    li.appendChild(button);
    list.appendChild(li);
  }
}

async function poll(url) {
  for (;;) {
    const res = await fetch(url, { headers: auth() });
    if (!res.ok) {
      $("status").textContent = await problemText(res);
      return;
    }
    const job = await res.json();
    showJob(job);
    if (["converted", "refused", "failed"].includes(job.state)) {
      await showFindings(job);
      $("status").textContent = "Job " + job.state + ".";
      return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function submit(event) {
  event.preventDefault();
  token = $("token").value.trim();
  const file = $("file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name);
  if ($("source").value.trim()) form.append("source", $("source").value.trim());
  $("status").textContent = "Uploading…";
  $("submit").disabled = true;
  try {
    const res = await fetch("/v1/jobs", { method: "POST", headers: auth(), body: form });
    if (res.status !== 202) {
      $("status").textContent = await problemText(res);
      return;
    }
    $("status").textContent = "Queued.";
    await poll(res.headers.get("Location"));
  } catch (e) {
    $("status").textContent = "Upload failed: " + e;
  } finally {
    $("submit").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("upload").addEventListener("submit", submit);
});
