//! The legacy TAR torch format (torch ≤ 0.1.x, formats.md §2.2): members `storages` (pickled
//! headers interleaved with raw storage bytes), `tensors` (pickled headers plus binary view
//! records) and `pickle` (the object, whose persistent ids name tensors by key).

use super::{collect_tensors, Analysis, Options};
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
    offset: u64,
    len: u64,
}

fn members<R: Read + Seek>(r: &mut R, opts: &Options) -> Result<Vec<(String, Member)>> {
    r.seek(SeekFrom::Start(0))?;
    let mut archive = tar::Archive::new(&mut *r);
    let mut out = Vec::new();
    for (n, entry) in archive.entries_with_seek()?.enumerate() {
        if n >= opts.limits.max_archive_members {
            return Err(Error::limit("max_archive_members", "too many tar members"));
        }
        let entry = entry.map_err(|e| Error::malformed(format!("tar: {e}")))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let m = Member {
            offset: entry.raw_file_position(),
            len: entry.size(),
        };
        out.push((name, m));
    }
    Ok(out)
}

pub fn analyze<R: Read + Seek>(
    r: &mut R,
    len: u64,
    opts: &Options,
    a: &mut Analysis,
) -> Result<()> {
    let list = members(r, opts)?;
    let legacy = ["storages", "tensors", "pickle"];
    if !legacy
        .iter()
        .all(|n| list.iter().any(|(name, _)| name == n))
    {
        // Not a legacy torch checkpoint: a tar of arbitrary files, read member by member.
        let plain: Vec<(String, u64, u64)> = list
            .into_iter()
            .map(|(n, m)| (n, m.offset, m.len))
            .collect();
        return super::archive::tar_members(&plain, r, len, opts, a);
    }
    let m: HashMap<String, Member> = list.into_iter().collect();
    let get = |name: &str| {
        m.get(name)
            .filter(|mm| mm.offset.checked_add(mm.len).is_some_and(|e| e <= len))
            .ok_or_else(|| {
                Error::UnknownFormat(format!(
                    "tar archive without a `{name}` member: not a torch checkpoint"
                ))
            })
    };
    let (storages_m, tensors_m, pickle_m) = (get("storages")?, get("tensors")?, get("pickle")?);
    let mut graph = Graph::new(&opts.limits);
    let mut storages: HashMap<i64, Storage> = HashMap::new();

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
            storages.insert(
                key,
                Storage {
                    key: format!("tar:{key}"),
                    dtype: Some(dtype),
                    source: DataSource::File {
                        offset,
                        len: nbytes,
                    },
                    big_endian: false,
                },
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
            let root = storages
                .get(&t[1])
                .ok_or_else(|| bad("view of an unknown storage"))?
                .clone();
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
            storages.insert(
                t[0],
                Storage {
                    key: root.key.clone(),
                    dtype: root.dtype,
                    source: DataSource::File {
                        offset: offset + start,
                        len: n,
                    },
                    big_endian: false,
                },
            );
        }
    }

    // --- tensors: n, then n × (pickle (key, storage key, type), i32 ndim, 4 pad, sizes, strides, offset) ---
    let mut tensors: HashMap<i64, (i64, Vec<i64>, Vec<i64>, i64)> = HashMap::new();
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
            tensors.insert(key, (storage_key, size, stride, offset));
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
    // Turn each persistent id into the tensor it names.
    for id in 0..graph.len() as NodeId {
        let Node::PersistentId(pid) = graph.get(id) else {
            continue;
        };
        let key = match graph.get(*pid) {
            Node::Str(s) => s.parse::<i64>().ok(),
            Node::Int(i) => Some(*i),
            _ => None,
        };
        let Some((storage_key, size, stride, offset)) = key.and_then(|k| tensors.get(&k)).cloned()
        else {
            continue;
        };
        let skey = graph.add(Node::Int(storage_key))?;
        let storage = graph.add(Node::PersistentId(skey))?;
        let mut t = TensorNode::new(Some(storage), TensorLayout::Dense);
        t.offset = offset;
        t.size = size;
        t.stride = stride;
        *graph.get_mut(id) = Node::Tensor(Box::new(t));
    }
    super::nested::scan(&graph, &mut a.findings, opts, opts.nesting);
    let mut resolver = TarStorages {
        storages: &storages,
    };
    collect_tensors(&graph, root, None, &mut resolver, opts, a)
}

/// The same file as `pickle.load` and `torch.load` of a buffer read it: they never try tarfile,
/// so a tar whose first header is also a pickle stream runs that pickle there. Its findings are
/// kept, and a file that is both is a high container anomaly: which weights a user gets (and
/// whether code runs) depends on how the file is opened.
pub fn pickle_reading<R: Read + Seek>(r: &mut R, len: u64, opts: &Options, a: &mut Analysis) {
    let label = "read by pickle.load / torch.load(buffer), which do not try tarfile";
    if super::pickle_file::plain_reading(r, len, opts, label, &mut a.findings) {
        a.findings.push(Finding {
            rule: Rule::ContainerAnomaly,
            severity: Severity::High,
            message: "the file is a tar archive to torch.load(path) and also a pickle to \
                      pickle.load and torch.load(buffer): the loaders read different contents"
                .into(),
            global: None,
            location: Location::default(),
        });
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
    storages: &'a HashMap<i64, Storage>,
}

impl StorageResolver for TarStorages<'_> {
    fn storage(&mut self, g: &Graph, node: NodeId) -> Result<Storage> {
        let Node::PersistentId(k) = g.get(node) else {
            return Err(bad("tensor storage is not a storage"));
        };
        let key = g.as_int(*k).ok_or_else(|| bad("storage key"))?;
        self.storages
            .get(&key)
            .cloned()
            .ok_or_else(|| bad("tensor refers to a missing storage"))
    }
}
