//! The `load_*` handlers of the opcode table ([`super::opcodes`]), by group. Each follows the
//! function of the same name in CPython's `Modules/_pickle.c` (and `Lib/pickle.py` where the
//! pure-Python unpickler joblib uses differs); docs/unpickling-model.md states the model.

mod build;
mod calls;
mod containers;
mod control;
mod memo;
mod names;
mod scalars;
