//! Container issues: places where the archive can be read differently by different readers,
//! or where it does something no ordinary writer does. They become findings (rule MG013) in
//! `torch_zip.rs`; none of them changes which bytes modelguard reads.

/// A way the container could be read differently by torch, numpy and other tools. None of
/// these stop the loader this archive was opened for (the reader refuses those itself); they
/// are findings for the report and the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ContainerIssueKind {
    /// Several central-directory entries with names miniz treats as equal (ASCII case-insensitive),
    /// or entries whose bytes overlap (another form of one payload appearing as two members).
    DuplicateMember,
    /// The local header names the member differently from the central directory.
    LocalNameMismatch,
    /// Stored CRC-32 differs from the data (torch never checks).
    CrcMismatch,
    /// Bytes before the first local header that the central directory references.
    DataBeforeFirstHeader,
    /// Bytes after the end-of-central-directory record (and its comment).
    DataAfterEnd,
    /// Entries outside `<root>/`, where `<root>` comes from the first entry.
    MixedRoots,
    /// Name is not valid UTF-8 (shown lossily).
    NonUtf8Name,
    /// Flag bits, method or attributes that ordinary writers do not produce, or that differ
    /// between the local header and the central directory.
    UnusualFlags,
    /// `..` components, absolute paths, drive letters, backslashes or NUL in a name.
    SuspiciousPath,
    /// The end records disagree with each other or with the central directory.
    CentralDirectoryCountMismatch,
}

pub(super) const ISSUE_KINDS: usize = 10;

/// Individual issues kept per kind; the rest are summarised in one issue.
pub(super) const MAX_ISSUES_PER_KIND: usize = 100;

impl ContainerIssueKind {
    const ALL: [ContainerIssueKind; ISSUE_KINDS] = [
        ContainerIssueKind::DuplicateMember,
        ContainerIssueKind::LocalNameMismatch,
        ContainerIssueKind::CrcMismatch,
        ContainerIssueKind::DataBeforeFirstHeader,
        ContainerIssueKind::DataAfterEnd,
        ContainerIssueKind::MixedRoots,
        ContainerIssueKind::NonUtf8Name,
        ContainerIssueKind::UnusualFlags,
        ContainerIssueKind::SuspiciousPath,
        ContainerIssueKind::CentralDirectoryCountMismatch,
    ];

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|&k| k == self)
            .expect("every kind is listed")
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ContainerIssue {
    pub kind: ContainerIssueKind,
    pub member: Option<String>,
    pub detail: String,
}

/// Collects issues, keeping at most [`MAX_ISSUES_PER_KIND`] of each kind.
pub(super) struct Issues<'a> {
    pub(super) list: &'a mut Vec<ContainerIssue>,
    pub(super) counts: &'a mut [usize; ISSUE_KINDS],
}

impl Issues<'_> {
    pub(super) fn push(&mut self, kind: ContainerIssueKind, member: Option<&str>, detail: String) {
        let c = &mut self.counts[kind.index()];
        *c += 1;
        if *c <= MAX_ISSUES_PER_KIND {
            self.list.push(ContainerIssue {
                kind,
                member: member.map(str::to_string),
                detail,
            });
        }
    }

    /// Append one summary issue for every kind that overflowed.
    pub(super) fn summarise(&mut self) {
        for kind in ContainerIssueKind::ALL {
            let n = self.counts[kind.index()];
            if n > MAX_ISSUES_PER_KIND {
                // Drop any older summary for this kind and write a fresh one.
                self.list.retain(|i| {
                    !(i.kind == kind && i.member.is_none() && i.detail.starts_with("… "))
                });
                self.list.push(ContainerIssue {
                    kind,
                    member: None,
                    detail: format!(
                        "… and {} more issues of this kind not listed individually",
                        n - MAX_ISSUES_PER_KIND
                    ),
                });
            }
        }
    }
}

/// `..` components, absolute paths, drive letters, backslashes, NUL: names that extract
/// somewhere else than they say, or that C readers cut short.
pub(super) fn suspicious_path(name: &[u8]) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty name");
    }
    if name.contains(&0) {
        return Some("NUL byte in name (C readers truncate it)");
    }
    if name.contains(&b'\\') {
        return Some("backslash in name");
    }
    if name[0] == b'/' {
        return Some("absolute path");
    }
    if name.len() >= 2 && name[1] == b':' && name[0].is_ascii_alphabetic() {
        return Some("drive-letter path");
    }
    if name.split(|&c| c == b'/').any(|c| c == b"..") {
        return Some("`..` path component");
    }
    None
}
