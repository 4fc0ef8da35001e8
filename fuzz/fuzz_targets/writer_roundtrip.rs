#![no_main]
//! Differential: any tensor set our writer accepts must pass the strict validator in canonical
//! mode, with the same names, dtypes, shapes and bytes.
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use modelguard::output::{validate_header, OutTensor, SafetensorsWriter, Strictness};
use modelguard::tensors::dtype::Dtype;
use std::collections::BTreeMap;
use std::io::Cursor;

#[derive(Arbitrary, Debug)]
struct Tensor {
    name: String,
    dtype: u8,
    shape: Vec<u8>,
    fill: u8,
}

fuzz_target!(|tensors: Vec<Tensor>| {
    let dtypes = Dtype::ALL;
    let mut out = Vec::new();
    let mut bytes: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for t in tensors.iter().take(16) {
        let dtype = dtypes[t.dtype as usize % dtypes.len()];
        let shape: Vec<u64> = t.shape.iter().take(4).map(|&d| u64::from(d % 8)).collect();
        let numel: u64 = shape.iter().product();
        let bits = numel * dtype.bits();
        if bits % 8 != 0 {
            continue;
        }
        bytes.insert(t.name.clone(), vec![t.fill; (bits / 8) as usize]);
        out.push(OutTensor {
            name: t.name.clone(),
            dtype,
            shape,
        });
    }
    let specs: BTreeMap<String, (Dtype, Vec<u64>)> = out
        .iter()
        .map(|t| (t.name.clone(), (t.dtype, t.shape.clone())))
        .collect();
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let Ok(mut w) = SafetensorsWriter::new(Vec::new(), out, &meta) else {
        return;
    };
    let order: Vec<String> = w.order().iter().map(|(t, _)| t.name.clone()).collect();
    for name in &order {
        w.write_data(&bytes[name]).expect("the planned bytes fit");
    }
    let file = w.finish().expect("a complete file");
    let h = validate_header(
        &mut Cursor::new(&file),
        file.len() as u64,
        Strictness::Canonical,
    )
    .expect("what the writer writes, the canonical validator accepts");
    assert_eq!(h.tensors.len(), specs.len());
    let start = 8 + h.header_len as usize;
    for (name, dtype, shape, (b, e)) in &h.tensors {
        assert_eq!(&specs[name], &(*dtype, shape.clone()));
        assert_eq!(
            &file[start + *b as usize..start + *e as usize],
            &bytes[name][..]
        );
    }
});
