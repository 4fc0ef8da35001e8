#!/usr/bin/env bash
# Seed each target's working corpus fuzz/work/TARGET from the committed fixtures and the
# malicious corpus (fuzz/run.sh grows work/ and reads the committed, minimised fuzz/corpus/).
set -euo pipefail
cd "$(dirname "$0")"
f=../tests/fixtures
seed() { mkdir -p "work/$1"; shift; for p in "$@"; do [ -f "$p" ] && cp -n "$p" "work/$target/" 2>/dev/null || true; done; }
target=pickle;      seed pickle $f/pickles/*.pkl $f/malicious/files/*.pkl $f/malicious/files/*.pickle $f/models/plain_pickle.pkl $f/models/two_pickles.pkl
target=torch_zip;   seed torch_zip $f/models/*.pt $f/models/*.ckpt $f/models/*.pth $f/models/npz/*
target=legacy_tar;  seed legacy_tar $f/models/legacy_tar.pt
target=npy;         seed npy $f/models/npy/*
target=joblib;      seed joblib $f/models/joblib/*
target=any_format;  seed any_format $f/models/*.pt $f/models/npy/* $f/models/joblib/* $f/malicious/files/*
target=safetensors_validator; seed safetensors_validator $f/expected/*.safetensors
mkdir -p work/writer_roundtrip
for d in work/*; do echo "$d: $(ls "$d" | wc -l) seeds"; done
