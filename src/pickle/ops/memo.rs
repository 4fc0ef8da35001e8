//! PUT, BINPUT, LONG_BINPUT, MEMOIZE, GET, BINGET, LONG_BINGET.

use crate::error::{Error, Result};
use crate::pickle::input::Input;
use crate::pickle::machine::{Flow, Machine, MAX_NAME_LINE};
use crate::pickle::text;

impl Machine<'_, '_, '_> {
    fn memo_put(&mut self, idx: u64) -> Result<Flow> {
        let value = self.top()?;
        if !self.memo.contains_key(&idx) && self.memo.len() >= self.limits.max_memo {
            return Err(Error::limit(
                "max_memo",
                format!("more than {} memo entries", self.limits.max_memo),
            ));
        }
        self.memo.insert(idx, value);
        Ok(Flow::Continue)
    }

    fn memo_get(&mut self, idx: u64) -> Result<Flow> {
        let v = *self
            .memo
            .get(&idx)
            .ok_or_else(|| Error::malformed(format!("memo value not found at index {idx}")))?;
        self.push(v)?;
        Ok(Flow::Continue)
    }

    pub(crate) fn load_put(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let idx = text::parse_index_line(&input.read_line(MAX_NAME_LINE)?, "PUT")?;
        self.memo_put(idx)
    }

    pub(crate) fn load_binput(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let idx = input.read_u8()? as u64;
        self.memo_put(idx)
    }

    pub(crate) fn load_long_binput(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let idx = u32::from_le_bytes(input.read_array()?) as u64;
        self.memo_put(idx)
    }

    /// The next index is the number of memo entries, in both unpicklers.
    pub(crate) fn load_memoize(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let idx = self.memo.len() as u64;
        self.memo_put(idx)
    }

    pub(crate) fn load_get(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let idx = text::parse_index_line(&input.read_line(MAX_NAME_LINE)?, "GET")?;
        self.memo_get(idx)
    }

    pub(crate) fn load_binget(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let idx = input.read_u8()? as u64;
        self.memo_get(idx)
    }

    pub(crate) fn load_long_binget(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let idx = u32::from_le_bytes(input.read_array()?) as u64;
        self.memo_get(idx)
    }
}
