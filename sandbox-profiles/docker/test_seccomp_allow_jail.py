"""Tests for seccomp-allow-jail.py (pytest; stdlib only otherwise).

Run: python3 -m pytest sandbox-profiles/docker
"""

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "seccomp-allow-jail.py"
LOCKDOWN_RS = HERE.parent.parent / "src" / "jail" / "lockdown.rs"

# include/uapi/linux/sched.h
FLAGS = {
    "CLONE_NEWTIME": 0x00000080,
    "CLONE_VM": 0x00000100,
    "CLONE_FS": 0x00000200,
    "CLONE_FILES": 0x00000400,
    "CLONE_NEWNS": 0x00020000,
    "CLONE_SYSVSEM": 0x00040000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
JAIL = FLAGS["CLONE_NEWUSER"] | FLAGS["CLONE_NEWNET"] | FLAGS["CLONE_NEWIPC"] | FLAGS["CLONE_NEWUTS"]
JAIL_FALLBACK = FLAGS["CLONE_NEWNET"] | FLAGS["CLONE_NEWIPC"] | FLAGS["CLONE_NEWUTS"]

# Shaped like moby/profiles seccomp/default.json, much shorter.
SYNTHETIC = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [
        {
            "architecture": "SCMP_ARCH_X86_64",
            "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        }
    ],
    "syscalls": [
        {
            "names": [
                "close_range",
                "landlock_create_ruleset",
                "landlock_restrict_self",
                "prctl",
                "read",
                "seccomp",
                "setsid",
                "write",
            ],
            "action": "SCMP_ACT_ALLOW",
        },
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}],
        },
        {
            "names": ["clone", "mount", "pivot_root", "setns", "umount2", "unshare"],
            "action": "SCMP_ACT_ALLOW",
            "includes": {"caps": ["CAP_SYS_ADMIN"]},
        },
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
            "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]},
        },
        {
            "names": ["clone3"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 38,
            "excludes": {"caps": ["CAP_SYS_ADMIN"]},
        },
    ],
}


def run(tmp_path, profile_text, *extra):
    src = tmp_path / "default.json"
    src.write_text(profile_text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(src), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


def added(tmp_path, profile=SYNTHETIC):
    r = run(tmp_path, json.dumps(profile))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return json.loads(r.stdout)


def allows(rule, syscall, flags, caps=()):
    """Evaluate one Docker seccomp rule for a call without CAP_SYS_ADMIN, the way Docker's
    conversion (includes/excludes) and libseccomp (SCMP_CMP_MASKED_EQ: arg & value == valueTwo)
    would."""
    if syscall not in rule["names"] or rule["action"] != "SCMP_ACT_ALLOW":
        return False
    if any(c not in caps for c in rule.get("includes", {}).get("caps", [])):
        return False
    if any(c in caps for c in rule.get("excludes", {}).get("caps", [])):
        return False
    for arg in rule.get("args", []):
        assert arg["op"] == "SCMP_CMP_MASKED_EQ"
        value = flags if arg["index"] == 0 else 0
        if value & arg["value"] != arg.get("valueTwo", 0):
            return False
    return True


def profile_allows(profile, syscall, flags, caps=()):
    return any(allows(r, syscall, flags, caps) for r in profile["syscalls"])


def test_adds_exactly_one_rule_with_the_right_numbers(tmp_path):
    out = added(tmp_path)
    assert out["syscalls"][:-1] == SYNTHETIC["syscalls"]
    assert {k: v for k, v in out.items() if k != "syscalls"} == {
        k: v for k, v in SYNTHETIC.items() if k != "syscalls"
    }
    rule = out["syscalls"][-1]
    assert rule["names"] == ["unshare"]
    assert rule["action"] == "SCMP_ACT_ALLOW"
    assert rule["args"] == [
        {"index": 0, "value": 0xA3FFFFFF, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
    ]
    assert rule["args"][0]["value"] == 2751463423
    assert rule["args"][0]["value"] == ~JAIL & 0xFFFFFFFF
    assert JAIL == 0x5C000000
    assert rule["excludes"] == {"caps": ["CAP_SYS_ADMIN"]}
    assert "includes" not in rule
    assert set(rule) == {"names", "action", "args", "comment", "excludes"}


def test_output_file_and_stdin(tmp_path):
    src = json.dumps(SYNTHETIC)
    dst = tmp_path / "out.json"
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "-", "-o", str(dst)],
        input=src,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert json.loads(dst.read_text(encoding="utf-8")) == added(tmp_path)


def test_the_rule_accepts_the_jail_and_nothing_wider(tmp_path):
    out = added(tmp_path)
    rule = out["syscalls"][-1]
    for flags in (JAIL, JAIL_FALLBACK, FLAGS["CLONE_NEWUSER"], FLAGS["CLONE_NEWNET"], 0):
        assert allows(rule, "unshare", flags), hex(flags)
    for name in ("CLONE_NEWNS", "CLONE_NEWPID", "CLONE_NEWCGROUP", "CLONE_NEWTIME",
                 "CLONE_FS", "CLONE_FILES", "CLONE_SYSVSEM", "CLONE_VM"):
        assert not allows(rule, "unshare", FLAGS[name]), name
        assert not allows(rule, "unshare", JAIL | FLAGS[name]), name
    assert not allows(rule, "unshare", 0x80000000)
    assert not allows(rule, "unshare", 0xFFFFFFFF)
    # Without CAP_SYS_ADMIN the original profile allowed no unshare at all, the new one exactly
    # the jail's; nothing else changed for mount, setns, pivot_root or clone.
    assert not profile_allows(SYNTHETIC, "unshare", JAIL)
    assert profile_allows(out, "unshare", JAIL)
    assert not profile_allows(out, "unshare", FLAGS["CLONE_NEWNS"])
    for other in ("mount", "setns", "pivot_root", "umount2"):
        assert not profile_allows(out, other, 0)
    assert not profile_allows(out, "clone", FLAGS["CLONE_NEWUSER"])
    # With CAP_SYS_ADMIN, Docker's own rule applies and ours is left out.
    assert not allows(rule, "unshare", JAIL, caps=("CAP_SYS_ADMIN",))
    assert profile_allows(out, "unshare", FLAGS["CLONE_NEWNS"], caps=("CAP_SYS_ADMIN",))


def test_the_rule_covers_every_flag_the_jail_passes_to_unshare(tmp_path):
    """If src/jail/lockdown.rs ever asks for another namespace, this fails: the Docker profile
    (and docs/docker.md) must then change too."""
    src = LOCKDOWN_RS.read_text(encoding="utf-8")
    body = src.split("fn namespaces()", 1)[1].split("\nfn ", 1)[0]
    assert "unshare(" in body
    used = set(re.findall(r"CloneFlags::(CLONE_\w+)", body))
    assert used == {"CLONE_NEWUSER", "CLONE_NEWNET", "CLONE_NEWIPC", "CLONE_NEWUTS"}
    rule = added(tmp_path)["syscalls"][-1]
    assert allows(rule, "unshare", sum(FLAGS[n] for n in used))
    # lockdown.rs is the only place the jail unshares (or clones with namespace flags).
    jail = LOCKDOWN_RS.parent
    callers = sorted(p.name for p in jail.glob("*.rs") if "unshare(" in p.read_text("utf-8"))
    assert callers in (["lockdown.rs"], ["lockdown.rs", "probe.rs"]), callers


@pytest.mark.parametrize(
    "text, why",
    [
        ("not json at all", "is not JSON"),
        ("[]", "the top level is not a JSON object"),
        ('{"foo": 1}', "defaultAction"),
        ('{"defaultAction": "SCMP_ACT_ERRNO"}', "syscalls"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}',
         "names"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], '
         '"action": "SCMP_ACT_ALLOW"}]}', "SCMP_ACT_ALLOW"),
        # seccompiler's format (this repository's own sandbox-profiles/seccomp-*.json)
        ('{"worker": {"default_action": "kill_process", "filter_action": "allow", '
         '"filter": [{"syscall": "read"}]}}', "defaultAction"),
    ],
)
def test_refuses_what_is_not_a_docker_profile(tmp_path, text, why):
    r = run(tmp_path, text)
    assert r.returncode == 2
    assert r.stdout == ""
    assert why in r.stderr
    assert r.stderr.startswith("seccomp-allow-jail.py: ")


def test_refuses_its_own_output(tmp_path):
    once = added(tmp_path)
    r = run(tmp_path, json.dumps(once))
    assert r.returncode == 2
    assert "already the rule this script adds" in r.stderr
    assert r.stdout == ""


def test_refuses_a_profile_with_another_unshare_rule(tmp_path):
    profile = copy.deepcopy(SYNTHETIC)
    profile["syscalls"].append(
        {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
    )
    r = run(tmp_path, json.dumps(profile))
    assert r.returncode == 2
    assert "already has a rule for unshare" in r.stderr


def test_missing_input_is_an_error(tmp_path):
    r = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "absent.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "cannot read" in r.stderr
