//! joblib's `NumpyArrayWrapper` (`joblib/numpy_pickle.py`): after the pure-Python unpickler's
//! BUILD has written the state into the wrapper's `__dict__`, `NumpyUnpickler.load_build`
//! calls `wrapper.read(...)`, which reads the array bytes that follow in the stream. Every
//! attribute `read` uses is an instance lookup, so a state key that shadows one of its methods
//! is a value of the file's choosing that joblib calls.

use crate::error::{Error, Result};
use crate::pickle::value::{Graph, Node, NodeId, NumpyDtype};
use crate::policy::registry::{self, Kind};

/// The methods `read` reaches through the instance (`self.read_array(...)`, ...).
pub const WRAPPER_METHODS: &[&str] = &[
    "read",
    "read_array",
    "read_mmap",
    "safe_get_numpy_array_alignment_bytes",
];

/// What `read_array` will read from the stream.
pub struct JoblibRequest {
    pub dtype: NumpyDtype,
    pub shape: Vec<u64>,
    pub fortran: bool,
    /// `numpy_array_alignment_bytes` is set (not None): one padding-length byte, then that many
    /// bytes, precede the data.
    pub padded: bool,
    pub nbytes: u64,
    pub object_dtype: bool,
}

/// Why the machine cannot model this wrapper's `read`, or the read it makes.
pub enum WrapperRead {
    Request(JoblibRequest),
    /// A method name is planted in the instance `__dict__`: joblib calls this value.
    Planted(&'static str, NodeId),
    Unmodelled(String),
}

/// The read a wrapper with this instance `__dict__` makes.
pub fn wrapper_read(g: &Graph, wrapper: NodeId) -> Result<WrapperRead> {
    let what = "joblib NumpyArrayWrapper";
    let Node::Object(o) = g.get(wrapper) else {
        return Err(Error::malformed(format!("{what} is not an object")));
    };
    for m in WRAPPER_METHODS {
        if let Some(v) = o.attrs.get(m) {
            return Ok(WrapperRead::Planted(m, v));
        }
    }
    let attr = |k: &str| {
        o.attrs
            .get(k)
            .ok_or_else(|| Error::malformed(format!("{what} has no `{k}`")))
    };
    // numpy >= 2 has no __array_prepare__, so `subclass` is compared but never used; with an
    // older numpy another subclass would be reconstructed, so only the two numpy classes pass.
    let subclass = attr("subclass")?;
    let subclass_ok = match g.get(subclass) {
        Node::Global(gl) => {
            matches!((&*gl.module, &*gl.name), ("numpy", "ndarray" | "memmap"))
                || registry::lookup(&gl.module, &gl.name)
                    .is_some_and(|e| e.kind == Kind::NumpyArrayClass)
        }
        _ => false,
    };
    if !subclass_ok {
        return Ok(WrapperRead::Unmodelled(
            "a joblib array wrapper whose subclass is not numpy.ndarray".into(),
        ));
    }
    let shape_node = attr("shape")?;
    let Some(dims) = g.as_int_seq(shape_node) else {
        return Ok(if super::is_plain(g, shape_node) {
            WrapperRead::Unmodelled("a joblib array shape that is not a sequence of ints".into())
        } else {
            WrapperRead::Unmodelled("a joblib array shape that is not plain data".into())
        });
    };
    let shape = dims
        .into_iter()
        .map(|d| {
            u64::try_from(d).map_err(|_| Error::malformed(format!("{what}: negative dimension")))
        })
        .collect::<Result<Vec<u64>>>()?;
    let Node::NumpyDtype(dtype) = g.get(attr("dtype")?).clone() else {
        return Ok(WrapperRead::Unmodelled(
            "a joblib array dtype that is not a numpy dtype".into(),
        ));
    };

    let order = attr("order")?;
    let fortran = match g.get(order) {
        Node::Str(s) => &**s == "F",
        n if super::is_plain(g, order) && !matches!(n, Node::Str(_)) => false,
        _ => {
            return Ok(WrapperRead::Unmodelled(
                "a joblib array order that is not plain data".into(),
            ))
        }
    };
    // `getattr(self, "numpy_array_alignment_bytes", None) is not None`.
    let padded = o
        .attrs
        .get("numpy_array_alignment_bytes")
        .is_some_and(|a| !matches!(g.get(a), Node::None));
    let object_dtype = dtype.hasobject;
    let nbytes = if object_dtype {
        0
    } else {
        // A structured dtype reads as records of its void size (never a tensor).
        let code = dtype
            .descr
            .strip_prefix("structured:")
            .unwrap_or(&dtype.descr);
        let item = crate::tensors::numpy::itemsize(code).ok_or_else(|| {
            Error::unsupported(format!("numpy dtype `{}` in a joblib array", dtype.descr))
        })?;
        shape
            .iter()
            .try_fold(item, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Error::malformed(format!("{what}: array size overflows")))?
    };
    Ok(WrapperRead::Request(JoblibRequest {
        dtype,
        shape,
        fortran,
        padded,
        nbytes,
        object_dtype,
    }))
}
