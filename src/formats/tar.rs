//! The legacy TAR torch format (torch ≤ 0.1.x, formats.md §2.2): members `storages` (pickled
//! headers interleaved with raw storage bytes), `tensors` (pickled headers plus binary view
//! records) and `pickle` (the object, whose persistent ids name tensors by key).

use super::tar_header::{self, BLOCK};
use super::{collect_tensors, legacy, Analysis, Options};
use crate::error::{Error, Location, Result};
use crate::pickle::value::{Graph, Node, NodeId, StorageType, TensorLayout, TensorNode};
use crate::pickle::{Context, Input, Machine};
use crate::policy::findings::{Finding, Rule, Severity};
use crate::tensors::resolve::StorageResolver;
use crate::tensors::spec::{DataSource, Storage};
use crate::tensors::torch_dtype::TorchDtype;
use std::collections::HashMap;
use std::io::{BufReader, Read, Seek, SeekFrom};

struct Member {
    /// The name as `TarFile.getmembers` gives it (see `tar_header::parse`).
    name: Vec<u8>,
    offset: u64,
    len: u64,
}

/// The members CPython's `tarfile` lists (`TarFile.next`), for the layouts whose listing
/// modelguard reproduces exactly: regular files and empty directories. The archive ends at the
/// first all-zero block, at a header `frombuf` rejects, or at the end of the file, as it does for
/// CPython. Any other member type (links, GNU long names, PAX headers, sparse files, device
/// nodes, a directory with data) changes what CPython lists in ways the `tar` crate and other
/// readers do not share, so it is refused: torch.load(path) reads such a file with Python's
/// rules, and a reading that differs could miss the pickle torch runs.
fn members<R: Read + Seek>(r: &mut R, len: u64, opts: &Options) -> Result<Vec<Member>> {
    let mut out = Vec::new();
    let mut at = 0u64;
    let mut block = [0u8; BLOCK];
    while len.saturating_sub(at) >= BLOCK as u64 {
        r.seek(SeekFrom::Start(at))?;
        r.read_exact(&mut block)?;
        if block.iter().all(|&b| b == 0) {
            break; // EOFHeaderError: the end of the archive
        }
        let Some(h) = tar_header::parse(&block) else {
            if at == 0 {
                return Err(Error::UnknownFormat("not a tar archive".into()));
            }
            break; // InvalidHeaderError after the first member ends the archive silently
        };
        if out.len() >= opts.limits.max_archive_members {
            return Err(Error::limit("max_archive_members", "too many tar members"));
        }
        let data = at + BLOCK as u64;
        let size = u64::try_from(h.size).map_err(|_| bad("negative member size"))?;
        match h.typeflag {
            b'0' | 0 | b'7' => {
                if data.checked_add(size).is_none_or(|e| e > len) {
                    return Err(bad("a member's data runs past the end of the file"));
                }
                out.push(Member {
                    name: h.name,
                    offset: data,
                    len: size,
                });
                at = data + size.div_ceil(BLOCK as u64) * BLOCK as u64;
            }
            // CPython does not skip a directory's data: one with data is refused.
            b'5' if size == 0 => at = data,
            t => {
                return Err(Error::unsupported(format!(
                    "tar member type {:?}: Python's tarfile (which torch.load uses) lists such \
                     archives by rules modelguard does not reproduce",
                    char::from(t)
                )))
            }
        }
    }
    Ok(out)
}

/// `TarFile.getmember(name)`: the LAST member whose name equals `name` exactly. `getmember`
/// calls `_getmember(name.rstrip('/'))` with `normalize=False` (CPython 3.11 and 3.12
/// `Lib/tarfile.py`); only link-target lookups normalise, so `./storages` is not `storages`.
fn last_named<'m>(list: &'m [Member], name: &str) -> Option<&'m Member> {
    list.iter().rev().find(|m| m.name == name.as_bytes())
}

pub fn analyze<R: Read + Seek>(
    r: &mut R,
    len: u64,
    opts: &Options,
    a: &mut Analysis,
) -> Result<()> {
    let list = members(r, len, opts)?;
    let legacy = ["storages", "tensors", "pickle"];
    if !legacy.iter().all(|n| last_named(&list, n).is_some()) {
        // Not a legacy torch checkpoint (torch.load raises KeyError on it): a tar of arbitrary
        // files, read member by member.
        let plain: Vec<(String, u64, u64)> = list
            .into_iter()
            .map(|m| {
                (
                    String::from_utf8_lossy(&m.name).into_owned(),
                    m.offset,
                    m.len,
                )
            })
            .collect();
        return super::archive::tar_members(&plain, r, len, opts, a);
    }
    let get = |name: &str| last_named(&list, name).expect("checked above");
    let (storages_m, tensors_m, pickle_m) = (get("storages"), get("tensors"), get("pickle"));
    let mut graph = Graph::new(&opts.limits);
    // torch's one `deserialized_objects` dict: storages, views and tensors share its keys, and a
    // later entry replaces an earlier one (an int key; True and 1 are the same key).
    let mut objects: HashMap<i64, TarObject> = HashMap::new();

    // --- storages: n, then n × (pickle (key, location, type), i64 numel, data), then views ---
    r.seek(SeekFrom::Start(storages_m.offset))?;
    {
        let mut buf = BufReader::new(&mut *r);
        let mut input = Input::new(
            &mut buf,
            storages_m.offset,
            storages_m.offset + storages_m.len,
        );
        let ctx = ctx("storages");
        let load = |input: &mut Input<'_>, g: &mut Graph, f: &mut _| -> Result<NodeId> {
            Ok(Machine::new(g, f, &opts.limits, ctx.clone())
                .load(input)?
                .root)
        };
        let n = load(&mut input, &mut graph, &mut a.findings)?;
        let n = graph
            .as_int(n)
            .filter(|&n| n >= 0)
            .ok_or_else(|| bad("storage count is not an int"))?;
        for _ in 0..n {
            let hdr = load(&mut input, &mut graph, &mut a.findings)?;
            let items = graph
                .as_seq(hdr)
                .filter(|s| s.len() == 3)
                .ok_or_else(|| bad("storage header"))?
                .to_vec();
            let key = graph
                .as_int(items[0])
                .ok_or_else(|| bad("storage key is not an int"))?;
            let location = graph
                .as_str(items[1])
                .ok_or_else(|| bad("storage location is not a string"))?;
            legacy::check_location(&key.to_string(), location)?;
            let Node::StorageType(StorageType::Typed(dtype)) = graph.get(items[2]) else {
                return Err(bad("storage type is not an allowlisted storage class"));
            };
            let dtype = *dtype;
            let numel = u64::from_le_bytes(input.read_array()?);
            let nbytes = numel
                .checked_mul(dtype.itemsize())
                .ok_or_else(|| bad("storage size overflows"))?;
            let offset = input.pos();
            input.skip(nbytes, "tar storage data")?;
            objects.insert(
                key,
                TarObject::Storage(Storage {
                    key: format!("tar:{key}@{offset}"),
                    dtype: Some(dtype),
                    source: DataSource::File {
                        offset,
                        len: nbytes,
                    },
                    big_endian: false,
                }),
            );
        }
        let views = load(&mut input, &mut graph, &mut a.findings)?;
        for &v in graph
            .as_seq(views)
            .ok_or_else(|| bad("storage views are not a list"))?
            .to_vec()
            .iter()
        {
            let t = graph
                .as_int_seq(v)
                .filter(|t| t.len() == 4)
                .ok_or_else(|| bad("storage view"))?;
            let Some(TarObject::Storage(root)) = objects.get(&t[1]).cloned() else {
                return Err(bad("storage view of something that is not a storage"));
            };
            let item = root.dtype.map_or(1, TorchDtype::itemsize);
            let (start, n) = (u64::try_from(t[2]).ok(), u64::try_from(t[3]).ok());
            let (Some(start), Some(n)) = (
                start.and_then(|s| s.checked_mul(item)),
                n.and_then(|n| n.checked_mul(item)),
            ) else {
                return Err(bad("negative storage view"));
            };
            let DataSource::File { offset, len } = root.source else {
                unreachable!("tar storages are file ranges")
            };
            if start.checked_add(n).is_none_or(|e| e > len) {
                return Err(bad("storage view out of bounds"));
            }
            objects.insert(
                t[0],
                TarObject::Storage(Storage {
                    key: root.key.clone(),
                    dtype: root.dtype,
                    source: DataSource::File {
                        offset: offset + start,
                        len: n,
                    },
                    big_endian: false,
                }),
            );
        }
    }

    // --- tensors: n, then n × (pickle (key, storage key, type), i32 ndim, 4 pad, sizes, strides, offset) ---
    r.seek(SeekFrom::Start(tensors_m.offset))?;
    {
        let mut buf = BufReader::new(&mut *r);
        let mut input = Input::new(&mut buf, tensors_m.offset, tensors_m.offset + tensors_m.len);
        let ctx = ctx("tensors");
        let n = Machine::new(&mut graph, &mut a.findings, &opts.limits, ctx.clone())
            .load(&mut input)?
            .root;
        let n = graph
            .as_int(n)
            .filter(|&n| n >= 0)
            .ok_or_else(|| bad("tensor count is not an int"))?;
        for _ in 0..n {
            let hdr = Machine::new(&mut graph, &mut a.findings, &opts.limits, ctx.clone())
                .load(&mut input)?
                .root;
            let items = graph
                .as_seq(hdr)
                .filter(|s| s.len() == 3)
                .ok_or_else(|| bad("tensor header"))?
                .to_vec();
            let key = graph.as_int(items[0]).ok_or_else(|| bad("tensor key"))?;
            let storage_key = graph
                .as_int(items[1])
                .ok_or_else(|| bad("tensor storage key"))?;
            // Looked up now: a later entry under the same key does not change this tensor.
            let Some(TarObject::Storage(storage)) = objects.get(&storage_key).cloned() else {
                return Err(bad("tensor of something that is not a storage"));
            };
            let ndim = i32::from_le_bytes(input.read_array()?);
            if ndim < 0 || ndim as usize > opts.limits.max_rank {
                return Err(bad("tensor rank out of range"));
            }
            input.skip(4, "padding")?;
            let mut read_i64s = |k: i32| -> Result<Vec<i64>> {
                (0..k)
                    .map(|_| Ok(i64::from_le_bytes(input.read_array()?)))
                    .collect()
            };
            let size = read_i64s(ndim)?;
            let stride = read_i64s(ndim)?;
            let offset = read_i64s(1)?[0];
            objects.insert(
                key,
                TarObject::Tensor {
                    storage,
                    size,
                    stride,
                    offset,
                },
            );
        }
    }

    // --- pickle: persistent ids are str(key) of a tensor (or storage) ---
    r.seek(SeekFrom::Start(pickle_m.offset))?;
    let root = {
        let mut buf = BufReader::new(&mut *r);
        let mut input = Input::new(&mut buf, pickle_m.offset, pickle_m.offset + pickle_m.len);
        Machine::new(&mut graph, &mut a.findings, &opts.limits, ctx("pickle"))
            .load(&mut input)?
            .root
    };
    // Turn each persistent id into the tensor it names: `deserialized_objects[int(saved_id)]`.
    let mut used: Vec<Storage> = Vec::new();
    for id in 0..graph.len() as NodeId {
        let Node::PersistentId(pid) = graph.get(id) else {
            continue;
        };
        if matches!(graph.get(*pid), Node::Tuple(_)) {
            continue; // ('module', ...) ids: the machine grades them where they are made
        }
        let key = python_int(&graph, *pid)?;
        let (storage, size, stride, offset) = match objects.get(&key) {
            Some(TarObject::Tensor {
                storage,
                size,
                stride,
                offset,
            }) => (storage.clone(), size.clone(), stride.clone(), *offset),
            Some(TarObject::Storage(_)) => {
                return Err(Error::unsupported(format!(
                    "persistent id {key} names a storage, not a tensor"
                )))
            }
            None => {
                return Err(bad(&format!(
                    "persistent id {key} names nothing (torch raises KeyError)"
                )))
            }
        };
        let index = i64::try_from(used.len()).map_err(|_| bad("too many tensors"))?;
        used.push(storage);
        let skey = graph.add(Node::Int(index))?;
        let storage = graph.add(Node::PersistentId(skey))?;
        let mut t = TensorNode::new(Some(storage), TensorLayout::Dense);
        t.offset = offset;
        t.size = size;
        t.stride = stride;
        *graph.get_mut(id) = Node::Tensor(Box::new(t));
    }
    super::nested::scan(&graph, &mut a.findings, opts, opts.nesting);
    let mut resolver = TarStorages { storages: &used };
    collect_tensors(&graph, root, None, &mut resolver, opts, a)
}

/// What `deserialized_objects` holds under a key.
#[derive(Clone)]
enum TarObject {
    Storage(Storage),
    Tensor {
        storage: Storage,
        size: Vec<i64>,
        stride: Vec<i64>,
        offset: i64,
    },
}

/// `int(saved_id)` for the ids modelguard models: an int (or bool), or a str of ASCII decimal
/// digits with an optional minus sign. `int()` also takes whitespace, underscores, a plus sign,
/// non-ASCII digits, bytes and floats; those are refused rather than modelled.
fn python_int(g: &Graph, id: NodeId) -> Result<i64> {
    if let Some(i) = g.as_int(id) {
        return Ok(i);
    }
    let refused = || {
        Error::unsupported("a persistent id int() would convert by rules modelguard does not model")
    };
    let s = g.as_str(id).ok_or_else(refused)?;
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused());
    }
    s.parse::<i64>().map_err(|_| refused())
}

/// A file two loaders read as different containers: which contents a user gets, and whether
/// code runs, depends on how it is opened (high MG013).
fn two_readings(message: String) -> Finding {
    Finding {
        rule: Rule::ContainerAnomaly,
        severity: Severity::High,
        message,
        global: None,
        location: Location::default(),
    }
}

/// A file another loader reads as something else (an npy, a gzip or zlib joblib dump) whose
/// first block is also a tar header: torch.load(path) reads it as a legacy tar checkpoint and
/// runs its pickles. That reading is analysed for its findings, and the file is a high container
/// anomaly, like a tar that is also a pickle.
pub fn tar_reading<R: Read + Seek>(r: &mut R, len: u64, opts: &Options, a: &mut Analysis) {
    let mut t = Analysis::default();
    let read = analyze(r, len, opts, &mut t);
    let also = match &read {
        Ok(()) => String::new(),
        Err(e) => format!(" (that reading fails: {e})"),
    };
    for mut f in t.findings.into_vec() {
        f.location.member = Some(match f.location.member.take() {
            Some(m) => format!("read as a tar by torch.load(path): {m}"),
            None => "read as a tar by torch.load(path)".into(),
        });
        a.findings.push(f);
    }
    let message = format!(
        "the file is a {} to its own loader and a tar archive to torch.load(path), which tries \
         tarfile first{also}",
        a.format.as_str()
    );
    a.findings.push(two_readings(message));
}

/// The same file as `pickle.load` and `torch.load` of a buffer read it: they never try tarfile,
/// so a tar whose first header is also a pickle stream runs that pickle there. Its findings are
/// kept, and a file that is both is a high container anomaly: which weights a user gets (and
/// whether code runs) depends on how the file is opened.
pub fn pickle_reading<R: Read + Seek>(r: &mut R, len: u64, opts: &Options, a: &mut Analysis) {
    let label = "read by pickle.load / torch.load(buffer), which do not try tarfile";
    if super::pickle_file::plain_reading(r, len, opts, label, &mut a.findings) {
        a.findings.push(two_readings(
            "the file is a tar archive to torch.load(path) and also a pickle to pickle.load and \
             torch.load(buffer): the loaders read different contents"
                .into(),
        ));
    }
}

fn ctx(member: &str) -> Context {
    Context {
        member: Some(member.into()),
        joblib: false,
        nesting: 0,
        ..Default::default()
    }
}

fn bad(why: &str) -> Error {
    Error::malformed(format!("legacy torch tar: {why}"))
}

struct TarStorages<'a> {
    storages: &'a [Storage],
}

impl StorageResolver for TarStorages<'_> {
    fn storage(&mut self, g: &Graph, node: NodeId) -> Result<Storage> {
        let Node::PersistentId(k) = g.get(node) else {
            return Err(bad("tensor storage is not a storage"));
        };
        g.as_int(*k)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.storages.get(i))
            .cloned()
            .ok_or_else(|| bad("tensor refers to a missing storage"))
    }
}
