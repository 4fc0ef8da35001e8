//! Pickle opcode bytes (protocols 0–5), as in CPython's `Lib/pickle.py`, and the machine's
//! dispatch table: one `load_*` handler per opcode, as `Modules/_pickle.c`'s `load()` switch.

use super::input::Input;
use super::machine::{Flow, Machine};
use crate::error::Result;

pub const MARK: u8 = b'(';
pub const STOP: u8 = b'.';
pub const POP: u8 = b'0';
pub const POP_MARK: u8 = b'1';
pub const DUP: u8 = b'2';
pub const FLOAT: u8 = b'F';
pub const INT: u8 = b'I';
pub const BININT: u8 = b'J';
pub const BININT1: u8 = b'K';
pub const LONG: u8 = b'L';
pub const BININT2: u8 = b'M';
pub const NONE: u8 = b'N';
pub const PERSID: u8 = b'P';
pub const BINPERSID: u8 = b'Q';
pub const REDUCE: u8 = b'R';
pub const STRING: u8 = b'S';
pub const BINSTRING: u8 = b'T';
pub const SHORT_BINSTRING: u8 = b'U';
pub const UNICODE: u8 = b'V';
pub const BINUNICODE: u8 = b'X';
pub const APPEND: u8 = b'a';
pub const BUILD: u8 = b'b';
pub const GLOBAL: u8 = b'c';
pub const DICT: u8 = b'd';
pub const EMPTY_DICT: u8 = b'}';
pub const APPENDS: u8 = b'e';
pub const GET: u8 = b'g';
pub const BINGET: u8 = b'h';
pub const INST: u8 = b'i';
pub const LONG_BINGET: u8 = b'j';
pub const LIST: u8 = b'l';
pub const EMPTY_LIST: u8 = b']';
pub const OBJ: u8 = b'o';
pub const PUT: u8 = b'p';
pub const BINPUT: u8 = b'q';
pub const LONG_BINPUT: u8 = b'r';
pub const SETITEM: u8 = b's';
pub const TUPLE: u8 = b't';
pub const EMPTY_TUPLE: u8 = b')';
pub const SETITEMS: u8 = b'u';
pub const BINFLOAT: u8 = b'G';
pub const PROTO: u8 = 0x80;
pub const NEWOBJ: u8 = 0x81;
pub const EXT1: u8 = 0x82;
pub const EXT2: u8 = 0x83;
pub const EXT4: u8 = 0x84;
pub const TUPLE1: u8 = 0x85;
pub const TUPLE2: u8 = 0x86;
pub const TUPLE3: u8 = 0x87;
pub const NEWTRUE: u8 = 0x88;
pub const NEWFALSE: u8 = 0x89;
pub const LONG1: u8 = 0x8a;
pub const LONG4: u8 = 0x8b;
pub const BINBYTES: u8 = b'B';
pub const SHORT_BINBYTES: u8 = b'C';
pub const SHORT_BINUNICODE: u8 = 0x8c;
pub const BINUNICODE8: u8 = 0x8d;
pub const BINBYTES8: u8 = 0x8e;
pub const EMPTY_SET: u8 = 0x8f;
pub const ADDITEMS: u8 = 0x90;
pub const FROZENSET: u8 = 0x91;
pub const NEWOBJ_EX: u8 = 0x92;
pub const STACK_GLOBAL: u8 = 0x93;
pub const MEMOIZE: u8 = 0x94;
pub const FRAME: u8 = 0x95;
pub const BYTEARRAY8: u8 = 0x96;
pub const NEXT_BUFFER: u8 = 0x97;
pub const READONLY_BUFFER: u8 = 0x98;

/// An opcode the machine knows: its name (for messages) and its handler.
pub struct Op {
    pub name: &'static str,
    pub load: Handler,
}

pub type Handler = fn(&mut Machine<'_, '_, '_>, &mut Input<'_>) -> Result<Flow>;

macro_rules! ops {
    ($($code:ident => $load:ident),* $(,)?) => {
        /// Every opcode of protocols 0–5, indexed by its byte.
        static OPS: [Option<Op>; 256] = {
            let mut t: [Option<Op>; 256] = [const { None }; 256];
            $(t[$code as usize] = Some(Op { name: stringify!($code), load: |m, i| m.$load(i) });)*
            t
        };
    };
}

ops! {
    // control (ops/control.rs)
    PROTO => load_proto, FRAME => load_frame, STOP => load_stop, MARK => load_mark,
    POP => load_pop, POP_MARK => load_pop_mark, DUP => load_dup,
    // scalars (ops/scalars.rs)
    NONE => load_none, NEWTRUE => load_true, NEWFALSE => load_false,
    INT => load_int, BININT => load_binint, BININT1 => load_binint1, BININT2 => load_binint2,
    LONG => load_long, LONG1 => load_long1, LONG4 => load_long4,
    FLOAT => load_float, BINFLOAT => load_binfloat,
    STRING => load_string, BINSTRING => load_binstring, SHORT_BINSTRING => load_short_binstring,
    BINBYTES => load_binbytes, SHORT_BINBYTES => load_short_binbytes, BINBYTES8 => load_binbytes8,
    BYTEARRAY8 => load_bytearray8, NEXT_BUFFER => load_next_buffer,
    READONLY_BUFFER => load_readonly_buffer,
    UNICODE => load_unicode, BINUNICODE => load_binunicode,
    SHORT_BINUNICODE => load_short_binunicode, BINUNICODE8 => load_binunicode8,
    // containers (ops/containers.rs)
    EMPTY_TUPLE => load_empty_tuple, TUPLE => load_tuple, TUPLE1 => load_tuple1,
    TUPLE2 => load_tuple2, TUPLE3 => load_tuple3,
    EMPTY_LIST => load_empty_list, LIST => load_list, APPEND => load_append, APPENDS => load_appends,
    EMPTY_DICT => load_empty_dict, DICT => load_dict, SETITEM => load_setitem,
    SETITEMS => load_setitems,
    EMPTY_SET => load_empty_set, ADDITEMS => load_additems, FROZENSET => load_frozenset,
    // memo (ops/memo.rs)
    PUT => load_put, BINPUT => load_binput, LONG_BINPUT => load_long_binput,
    MEMOIZE => load_memoize, GET => load_get, BINGET => load_binget, LONG_BINGET => load_long_binget,
    // names (ops/names.rs)
    GLOBAL => load_global, STACK_GLOBAL => load_stack_global,
    EXT1 => load_ext1, EXT2 => load_ext2, EXT4 => load_ext4,
    PERSID => load_persid, BINPERSID => load_binpersid,
    // calls (ops/calls.rs) and BUILD (ops/build.rs)
    REDUCE => load_reduce, NEWOBJ => load_newobj, NEWOBJ_EX => load_newobj_ex,
    INST => load_inst, OBJ => load_obj, BUILD => load_build,
}

/// The opcode `code` names, or None for a byte that is no opcode ("invalid load key").
pub fn op(code: u8) -> Option<&'static Op> {
    OPS[code as usize].as_ref()
}

/// The opcode's name for messages, or None for a byte that is no opcode.
pub fn name(code: u8) -> Option<&'static str> {
    op(code).map(|o| o.name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_protocol_5_opcode_has_a_handler() {
        // Lib/pickle.py defines 68 opcodes for protocols 0-5.
        assert_eq!(super::OPS.iter().flatten().count(), 68);
    }
}
