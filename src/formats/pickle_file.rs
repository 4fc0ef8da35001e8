//! Files that are pickle streams: plain pickles (the first pickle of a stream gives the tensors,
//! every further one is scanned for findings),
//! joblib dumps (array bytes between opcodes), and the legacy torch "1001" stream.

use super::legacy::{self, LegacyStorages};
use super::{collect_tensors, Analysis, Format, Options};
use crate::error::{Error, Result};
use crate::pickle::value::{ArrayData, ClassKnowledge, Graph, Node, NodeId};
use crate::pickle::{Context, Input, Machine};
use crate::policy::findings::{Finding, Findings, Rule, Severity};
use crate::policy::registry::Kind;
use crate::tensors::gather::SeekReader;
use crate::tensors::resolve::StorageResolver;
use crate::tensors::spec::Storage;
use std::collections::HashMap;
use std::io::{BufReader, Read, Seek, SeekFrom};

pub fn analyze<R: Read + Seek>(
    r: &mut R,
    len: u64,
    opts: &Options,
    a: &mut Analysis,
) -> Result<()> {
    analyze_stream(r, len, opts, a, true)
}

/// `plain_loadable`: `pickle.load` can be pointed at these bytes (an uncompressed file), so a
/// joblib dump with more bytes after it is refused: joblib.load returns the dump's object while
/// pickle.load, reading the array bytes as opcodes, raises. Inside joblib's compression only
/// joblib reads the stream.
pub(super) fn analyze_stream<R: Read + Seek>(
    r: &mut R,
    len: u64,
    opts: &Options,
    a: &mut Analysis,
    plain_loadable: bool,
) -> Result<()> {
    let mut graph = Graph::new(&opts.limits);
    let ctx = Context {
        member: None,
        joblib: true,
        nesting: 0,
        ..Default::default()
    };
    let mut root: Option<NodeId> = None;
    let mut legacy_layout = None;
    let read = (|| -> Result<()> {
        r.seek(SeekFrom::Start(0))?;
        let mut buf = BufReader::with_capacity(1 << 16, &mut *r);
        let mut input = Input::new(&mut buf, 0, len);
        let first = Machine::new(&mut graph, &mut a.findings, &opts.limits, ctx.clone())
            .load(&mut input)?;
        if legacy::is_magic(&graph, first.root) {
            a.format = Format::TorchLegacy;
            let legacy_ctx = Context {
                joblib: false,
                torch: true,
                ..ctx.clone()
            };
            legacy_layout = Some(legacy::parse_rest(
                &mut graph,
                &mut a.findings,
                opts,
                &mut input,
                &legacy_ctx,
            )?);
            return Ok(());
        }
        root = Some(first.root);
        if plain_loadable && has_joblib_arrays(&graph) && !input.at_end()? {
            return Err(Error::malformed(format!(
                "a joblib dump followed by {} more bytes (from offset {}): joblib.load returns \
                 the dump's object, pickle.load reads its array bytes as opcodes and raises; the \
                 loaders disagree on this file",
                len - input.pos(),
                input.pos()
            )));
        }
        // Every further pickle in the stream: `pickle.load` and `joblib.load` return the first
        // object only, but a loader calling pickle.load again runs the next one. They are read
        // for findings; their tensors are never converted.
        let first_end = input.pos();
        let mut more = 0usize;
        while !input.at_end()? {
            let start = input.pos();
            let c = Context {
                member: Some(format!("pickle #{}", more + 2)),
                ..ctx.clone()
            };
            match Machine::new(&mut graph, &mut a.findings, &opts.limits, c).load(&mut input) {
                Ok(_) => more += 1,
                Err(e) => {
                    a.findings.push(Finding {
                        rule: Rule::TrailingBytes,
                        severity: Severity::Medium,
                        message: format!(
                            "{} bytes after the last complete pickle do not form a pickle ({e})",
                            len - start
                        ),
                        global: None,
                        location: crate::error::Location {
                            offset: Some(start),
                            ..Default::default()
                        },
                    });
                    break;
                }
            }
        }
        if more > 0 {
            a.findings.push(Finding {
                rule: Rule::TrailingBytes,
                severity: Severity::Medium,
                message: format!(
                    "{more} more pickle(s) after the first one ({} bytes from offset {first_end}): \
                     pickle.load and joblib.load return only the first object, so only its \
                     tensors are converted; the rest were scanned for findings",
                    len - first_end
                ),
                global: None,
                location: crate::error::Location {
                    offset: Some(first_end),
                    ..Default::default()
                },
            });
        }
        Ok(())
    })();
    // joblib.load reads a NumpyArrayWrapper's array bytes from the stream; pickle.load (and any
    // other unpickler) treats the wrapper as a plain object and reads those bytes as opcodes.
    // The same file is a different program to each, so the plain reading is run too.
    if has_joblib_wrapper(&graph) {
        plain_reading(
            r,
            len,
            opts,
            "read by pickle.load instead of joblib.load",
            &mut a.findings,
        );
    }
    read?;
    super::nested::scan(&graph, &mut a.findings, opts, opts.nesting);
    if let Some((root, keys, data_start)) = legacy_layout {
        let storages =
            legacy::locate_storages(&graph, &keys, data_start, len, &mut SeekReader(r), None)?;
        if data_start_end(&storages) < len {
            a.findings.push(trailing(
                len - data_start_end(&storages),
                data_start_end(&storages),
            ));
        }
        let mut resolver = Nested {
            inner: Some(LegacyStorages::new(&graph, &storages)?),
            findings: Findings::default(),
            opts,
            cache: HashMap::new(),
        };
        let res = collect_tensors(&graph, root, None, &mut resolver, opts, a);
        a.findings.extend(resolver.findings.into_vec());
        return res;
    }
    if has_joblib_arrays(&graph) {
        a.format = Format::Joblib;
    } else {
        a.format = Format::Pickle;
    }
    let mut resolver = Nested {
        inner: None,
        findings: Findings::default(),
        opts,
        cache: HashMap::new(),
    };
    let result = root.map_or(Ok(()), |root| {
        collect_tensors(&graph, root, None, &mut resolver, opts, a)
    });
    a.findings.extend(resolver.findings.into_vec());
    result
}

fn data_start_end(storages: &HashMap<String, Storage>) -> u64 {
    storages
        .values()
        .filter_map(|s| match s.source {
            crate::tensors::spec::DataSource::File { offset, len } => Some(offset + len),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

fn trailing(n: u64, at: u64) -> Finding {
    Finding {
        rule: Rule::TrailingBytes,
        severity: Severity::Low,
        message: format!("{n} bytes after the last storage"),
        global: None,
        location: crate::error::Location {
            offset: Some(at),
            ..Default::default()
        },
    }
}

fn has_joblib_wrapper(g: &Graph) -> bool {
    (0..g.len() as NodeId).any(|i| {
        matches!(g.get(i), Node::Object(o) if o.class == ClassKnowledge::Registered(Kind::JoblibArrayWrapper))
    })
}

/// The file as `pickle.load` reads it (no joblib wrapper semantics), for its findings only.
/// That reading usually breaks where the array bytes start, which is expected: only what it
/// would run before breaking matters. `label` names the reading in finding locations. True when
/// at least one whole pickle was read (`pickle.load` returns an object).
pub(super) fn plain_reading<R: Read + Seek>(
    r: &mut R,
    len: u64,
    opts: &Options,
    label: &str,
    findings: &mut Findings,
) -> bool {
    let mut graph = Graph::new(&opts.limits);
    let ctx = Context {
        member: Some(label.into()),
        nesting: opts.nesting,
        ..Default::default()
    };
    if r.seek(SeekFrom::Start(0)).is_err() {
        return false;
    }
    let mut buf = BufReader::with_capacity(1 << 16, &mut *r);
    let mut input = Input::new(&mut buf, 0, len);
    let mut plain = Findings::default();
    let mut whole = false;
    // Every pickle of the stream, as a loader calling pickle.load again (or torch.load reading
    // a legacy stream whose magic number only compares equal) would run them.
    while input.at_end().is_ok_and(|end| !end) {
        let ok = Machine::new(&mut graph, &mut plain, &opts.limits, ctx.clone())
            .load(&mut input)
            .is_ok();
        if !ok {
            break;
        }
        whole = true;
    }
    super::nested::scan(&graph, &mut plain, opts, opts.nesting);
    // Only what the plain reading adds: the same finding under another member name is noise.
    for f in plain.into_vec() {
        let known = findings.items().iter().any(|k| {
            k.rule == f.rule
                && match (&k.global, &f.global) {
                    (Some(a), Some(b)) => a == b,
                    (None, None) => k.message == f.message,
                    _ => false,
                }
        });
        if !known {
            findings.push(f);
        }
    }
    whole
}

fn has_joblib_arrays(g: &Graph) -> bool {
    (0..g.len() as NodeId)
        .any(|i| matches!(g.get(i), Node::Array(a) if matches!(a.data, ArrayData::Stream { .. })))
}

/// Storages of plain pickles: only nested `_load_from_bytes` streams carry data; a persistent
/// id means the file needs a loader-specific `persistent_load`, which plain pickle has not.
pub struct Nested<'o, 's> {
    pub inner: Option<LegacyStorages<'s>>,
    pub findings: Findings,
    pub opts: &'o Options,
    pub cache: HashMap<NodeId, Storage>,
}

impl StorageResolver for Nested<'_, '_> {
    fn storage(&mut self, g: &Graph, node: NodeId) -> Result<Storage> {
        if let Some(s) = self.cache.get(&node) {
            return Ok(s.clone());
        }
        let s = match (g.get(node), &mut self.inner) {
            (Node::LoadFromBytes(b), _) => {
                let b = *b;
                self.findings.push(Finding {
                    rule: Rule::NestedPickle,
                    severity: Severity::Info,
                    message: "tensor storage nested as a torch stream (torch.storage._load_from_bytes); parsed with the same allowlist".into(),
                    global: Some("torch.storage._load_from_bytes".into()),
                    location: Default::default(),
                });
                legacy::load_from_bytes(g, b, &mut self.findings, self.opts, self.opts.nesting)?
            }
            (Node::PersistentId(_), Some(inner)) => inner.storage(g, node)?,
            (Node::PersistentId(_), None) => {
                self.findings.push(Finding {
                    rule: Rule::UnexpectedPersistentId,
                    severity: Severity::Medium,
                    message: "a persistent id in a plain pickle: only a loader-specific persistent_load can resolve it".into(),
                    global: None,
                    location: Default::default(),
                });
                return Err(Error::malformed(
                    "tensor storage is a persistent id, which a plain pickle cannot resolve",
                ));
            }
            _ => return Err(Error::malformed("tensor storage is not a storage")),
        };
        self.cache.insert(node, s.clone());
        Ok(s)
    }
}
