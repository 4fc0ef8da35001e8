#!/usr/bin/env python3
"""Add one rule to Docker's default seccomp profile so that modelguard's jail can create its
namespaces inside a container.

Docker's default profile (moby/profiles, seccomp/default.json) allows `unshare` only to
containers with CAP_SYS_ADMIN, so the jailed worker's
`unshare(CLONE_NEWUSER|CLONE_NEWNET|CLONE_NEWIPC|CLONE_NEWUTS)` fails with EPERM and the
namespaces layer is reported as unavailable. This script copies the profile and appends exactly
one rule: `unshare` is allowed when its flags are any combination of those four namespace flags
and nothing else (no mount, PID or cgroup namespace, no CLONE_FS/CLONE_FILES/...), for
containers without CAP_SYS_ADMIN (with it, Docker's profile already allows every `unshare`).
Nothing else in the profile changes.

Take the input from the Docker version you run, e.g.
https://raw.githubusercontent.com/moby/profiles/main/seccomp/default.json, then:

    python3 seccomp-allow-jail.py default.json -o modelguard-seccomp.json
    docker run --security-opt seccomp=modelguard-seccomp.json ...

Exit status: 0 written, 2 the input is not a Docker seccomp profile or cannot be used.
"""

import argparse
import json
import sys

# include/uapi/linux/sched.h; the same values on every Linux architecture.
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

# What src/jail/lockdown.rs passes to unshare(2): first all four, then (when user namespaces are
# refused) the three without CLONE_NEWUSER. Both are subsets of ALLOWED_FLAGS.
JAIL_FLAGS = CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
JAIL_FALLBACK_FLAGS = CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
ALLOWED_FLAGS = JAIL_FLAGS  # 0x5c000000

# SCMP_CMP_MASKED_EQ in Docker's format: "value" is the mask, "valueTwo" the value the masked
# argument must equal (as in moby's own `clone` rule). unshare's flags are an int, so the mask
# covers the low 32 bits only. (flags & 0xa3ffffff) == 0 <=> flags ⊆ ALLOWED_FLAGS.
MASK = ~ALLOWED_FLAGS & 0xFFFFFFFF  # 0xa3ffffff = 2751463423

COMMENT = (
    "modelguard: allow unshare() of user, network, IPC and UTS namespaces only "
    "(flags & 0xa3ffffff == 0), so that the jailed worker gets its namespaces "
    "without CAP_SYS_ADMIN; added by sandbox-profiles/docker/seccomp-allow-jail.py"
)


def jail_rule():
    """The one rule this script adds."""
    return {
        "names": ["unshare"],
        "action": "SCMP_ACT_ALLOW",
        "args": [
            {
                "index": 0,
                "value": MASK,
                "valueTwo": 0,
                "op": "SCMP_CMP_MASKED_EQ",
            }
        ],
        "comment": COMMENT,
        "excludes": {"caps": ["CAP_SYS_ADMIN"]},
    }


class NotAProfile(Exception):
    pass


def rule_names(rule):
    names = rule.get("names")
    if names is None and "name" in rule:  # the old one-name-per-rule format
        names = [rule["name"]]
    return names


def check_profile(profile):
    """Refuse anything that is not shaped like Docker's seccomp profile, and inputs where one
    appended rule might not mean what it says."""
    if not isinstance(profile, dict):
        raise NotAProfile("the top level is not a JSON object")
    action = profile.get("defaultAction")
    if not isinstance(action, str) or not action.startswith("SCMP_ACT_"):
        raise NotAProfile('no "defaultAction" of the form SCMP_ACT_*')
    if action == "SCMP_ACT_ALLOW":
        raise NotAProfile(
            'its "defaultAction" is SCMP_ACT_ALLOW: unshare is not blocked, nothing to add'
        )
    syscalls = profile.get("syscalls")
    if not isinstance(syscalls, list) or not syscalls:
        raise NotAProfile('no "syscalls" list')
    for i, rule in enumerate(syscalls):
        if not isinstance(rule, dict):
            raise NotAProfile(f"syscalls[{i}] is not an object")
        names = rule_names(rule)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise NotAProfile(f'syscalls[{i}] has no "names" list')
        if not isinstance(rule.get("action"), str):
            raise NotAProfile(f'syscalls[{i}] has no "action"')
        if "unshare" not in names:
            continue
        if rule.get("comment") == COMMENT:
            raise NotAProfile(f"syscalls[{i}] is already the rule this script adds")
        caps = (rule.get("includes") or {}).get("caps") or []
        if "CAP_SYS_ADMIN" not in caps:
            # Docker's default mentions unshare only for CAP_SYS_ADMIN. Another rule could
            # conflict with ours (libseccomp refuses or merges conflicting actions), so stop.
            raise NotAProfile(
                f"syscalls[{i}] already has a rule for unshare that does not require "
                "CAP_SYS_ADMIN; this script only extends Docker's default profile"
            )


def add_jail_rule(profile):
    """A copy of `profile` with the jail's rule appended; `profile` itself is not changed."""
    check_profile(profile)
    out = dict(profile)
    out["syscalls"] = list(profile["syscalls"]) + [jail_rule()]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Write Docker's seccomp profile plus one rule allowing the modelguard "
        "jail's unshare(CLONE_NEWUSER|CLONE_NEWNET|CLONE_NEWIPC|CLONE_NEWUTS)."
    )
    parser.add_argument("profile", help="Docker's default.json ('-' reads standard input)")
    parser.add_argument(
        "-o", "--output", default="-", help="where to write the new profile (default: stdout)"
    )
    args = parser.parse_args(argv)
    prog = "seccomp-allow-jail.py"
    try:
        if args.profile == "-":
            text = sys.stdin.read()
        else:
            with open(args.profile, encoding="utf-8") as f:
                text = f.read()
    except OSError as e:
        print(f"{prog}: cannot read {args.profile}: {e}", file=sys.stderr)
        return 2
    try:
        profile = json.loads(text)
    except ValueError as e:
        print(f"{prog}: {args.profile} is not JSON: {e}", file=sys.stderr)
        return 2
    try:
        out = add_jail_rule(profile)
    except NotAProfile as e:
        print(
            f"{prog}: {args.profile} is not a Docker seccomp profile this script can extend: {e}",
            file=sys.stderr,
        )
        return 2
    # Tabs, like moby's own file, so that a diff against it shows only the added rule.
    text = json.dumps(out, indent="\t", ensure_ascii=False) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        try:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            print(f"{prog}: cannot write {args.output}: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
