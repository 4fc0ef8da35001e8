//! Opcodes that push one immutable value: None, bools, ints, floats, strings, bytes, and the
//! out-of-band buffer opcodes.

use crate::error::{Error, Result};
use crate::pickle::input::Input;
use crate::pickle::machine::{Flow, Machine, MAX_NAME_LINE};
use crate::pickle::text;
use crate::pickle::value::Node;

impl Machine<'_, '_, '_> {
    pub(crate) fn load_none(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        self.push_new(Node::None)
    }

    pub(crate) fn load_true(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        self.push_new(Node::Bool(true))
    }

    pub(crate) fn load_false(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        self.push_new(Node::Bool(false))
    }

    pub(crate) fn load_int(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let line = input.read_line(MAX_NAME_LINE)?;
        let node = text::parse_int_line(&line)?;
        self.push_new(node)
    }

    pub(crate) fn load_binint(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let v = i32::from_le_bytes(input.read_array()?);
        self.push_new(Node::Int(v as i64))
    }

    pub(crate) fn load_binint1(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let v = input.read_u8()?;
        self.push_new(Node::Int(v as i64))
    }

    pub(crate) fn load_binint2(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let v = u16::from_le_bytes(input.read_array()?);
        self.push_new(Node::Int(v as i64))
    }

    pub(crate) fn load_long(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let line = input.read_line(MAX_NAME_LINE)?;
        let node = text::parse_long_line(&line)?;
        self.push_new(node)
    }

    pub(crate) fn load_long1(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let n = input.read_u8()? as u64;
        let bytes = self.read_bytes(input, n, "LONG1")?;
        self.push_new(text::long_from_le(&bytes))
    }

    pub(crate) fn load_long4(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let n = i32::from_le_bytes(input.read_array()?);
        if n < 0 {
            return Err(Error::malformed("LONG pickle has negative byte count"));
        }
        let bytes = self.read_bytes(input, n as u64, "LONG4")?;
        self.push_new(text::long_from_le(&bytes))
    }

    pub(crate) fn load_float(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let line = input.read_line(MAX_NAME_LINE)?;
        let node = text::parse_float_line(&line)?;
        self.push_new(node)
    }

    pub(crate) fn load_binfloat(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let v = f64::from_be_bytes(input.read_array()?);
        self.push_new(Node::Float(v))
    }

    pub(crate) fn load_string(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let line = self.read_text_value(input)?;
        let raw = text::unquote_string(&line)?;
        self.push_new(text::py2_string(raw))
    }

    pub(crate) fn load_binstring(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let n = i32::from_le_bytes(input.read_array()?);
        if n < 0 {
            return Err(Error::malformed("BINSTRING pickle has negative byte count"));
        }
        let raw = self.read_bytes(input, n as u64, "BINSTRING")?;
        self.push_new(text::py2_string(raw))
    }

    pub(crate) fn load_short_binstring(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let n = input.read_u8()? as u64;
        let raw = self.read_bytes(input, n, "SHORT_BINSTRING")?;
        self.push_new(text::py2_string(raw))
    }

    pub(crate) fn load_binbytes(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let n = u32::from_le_bytes(input.read_array()?) as u64;
        let raw = self.read_bytes(input, n, "BINBYTES")?;
        self.push_new(Node::Bytes(raw.into()))
    }

    pub(crate) fn load_short_binbytes(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let n = input.read_u8()? as u64;
        let raw = self.read_bytes(input, n, "SHORT_BINBYTES")?;
        self.push_new(Node::Bytes(raw.into()))
    }

    pub(crate) fn load_binbytes8(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let n = u64::from_le_bytes(input.read_array()?);
        let raw = self.read_bytes(input, n, "BINBYTES8")?;
        self.push_new(Node::Bytes(raw.into()))
    }

    pub(crate) fn load_bytearray8(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let n = u64::from_le_bytes(input.read_array()?);
        let raw = self.read_bytes(input, n, "BYTEARRAY8")?;
        self.push_new(Node::ByteArray(raw.into()))
    }

    /// A file has no out-of-band buffers: `pickle.load` without `buffers=` raises here.
    pub(crate) fn load_next_buffer(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        Err(Error::malformed(
            "pickle stream refers to out-of-band data, which a file cannot provide",
        ))
    }

    pub(crate) fn load_readonly_buffer(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let t = self.top()?;
        if !matches!(self.graph.get(t), Node::Bytes(_) | Node::ByteArray(_)) {
            return Err(Error::malformed(
                "READONLY_BUFFER on an object without the buffer protocol",
            ));
        }
        Ok(Flow::Continue)
    }

    pub(crate) fn load_unicode(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let line = self.read_text_value(input)?;
        let (s, wtf8) = text::raw_unicode_escape(&line)?;
        self.push_str(s, wtf8)
    }

    pub(crate) fn load_binunicode(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let n = u32::from_le_bytes(input.read_array()?) as u64;
        let raw = self.read_bytes(input, n, "BINUNICODE")?;
        self.push_str_surrogatepass(raw)
    }

    pub(crate) fn load_short_binunicode(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let n = input.read_u8()? as u64;
        let raw = self.read_bytes(input, n, "SHORT_BINUNICODE")?;
        self.push_str_surrogatepass(raw)
    }

    pub(crate) fn load_binunicode8(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let n = u64::from_le_bytes(input.read_array()?);
        let raw = self.read_bytes(input, n, "BINUNICODE8")?;
        self.push_str_surrogatepass(raw)
    }

    /// BINUNICODE payloads: UTF-8 with `surrogatepass`. Lone surrogates show as U+FFFD but the
    /// string keeps its code points for key equality, so distinct keys stay distinct.
    fn push_str_surrogatepass(&mut self, raw: Vec<u8>) -> Result<Flow> {
        let (s, wtf8) = text::utf8_surrogatepass(raw)?;
        self.push_str(s, wtf8)
    }

    fn push_str(&mut self, s: String, wtf8: Option<Vec<u8>>) -> Result<Flow> {
        let id = self.new_node(Node::Str(s.into()))?;
        if let Some(raw) = wtf8 {
            self.graph.mark_wtf8(id, raw);
        }
        self.push(id)?;
        Ok(Flow::Continue)
    }
}
