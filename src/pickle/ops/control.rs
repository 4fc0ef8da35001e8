//! PROTO, FRAME, STOP, MARK, POP, POP_MARK, DUP.

use crate::error::{Error, Result};
use crate::pickle::input::Input;
use crate::pickle::machine::{Flow, Machine};
use crate::policy::findings::{Rule, Severity};

impl Machine<'_, '_, '_> {
    pub(crate) fn load_proto(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let v = input.read_u8()?;
        if v > 5 {
            return Err(Error::malformed(format!(
                "unsupported pickle protocol: {v}"
            )));
        }
        self.proto = v;
        Ok(Flow::Continue)
    }

    /// Frames only batch reads; a frame whose length disagrees with the opcodes inside lets
    /// parsers that honour frames and parsers that ignore them read different programs.
    pub(crate) fn load_frame(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let len = u64::from_le_bytes(input.read_array()?);
        if len > input.remaining() {
            return Err(Error::malformed(format!(
                "FRAME of {len} bytes exceeds the {} bytes left",
                input.remaining()
            )));
        }
        if let Some(end) = self.frame_end {
            if self.op_pos() < end {
                self.finding(
                    Rule::FrameInconsistency,
                    Severity::High,
                    "a new FRAME starts before the current frame ends".into(),
                    None,
                );
            }
        }
        self.frame_end = Some(input.pos() + len);
        Ok(Flow::Continue)
    }

    pub(crate) fn load_stop(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let root = self.pop()?;
        if let Some(end) = self.frame_end {
            if input.pos() < end {
                // _pickle.c resumes right after STOP when the file can peek, at the frame's end
                // when it cannot (BytesIO: torch's zip records, _load_from_bytes); pickle.py at
                // the frame's end. What follows (a legacy stream's storages) differs.
                self.finding(
                    Rule::FrameInconsistency,
                    Severity::High,
                    format!("the FRAME continues {} bytes past STOP: loaders resume at different places after this pickle", end - input.pos()),
                    None,
                );
            }
        }
        Ok(Flow::Stop(root))
    }

    pub(crate) fn load_mark(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        if self.marks.len() >= self.limits.max_stack {
            return Err(Error::limit(
                "max_stack",
                format!("more than {} open MARKs", self.limits.max_stack),
            ));
        }
        self.marks.push(self.stack.len());
        Ok(Flow::Continue)
    }

    /// POP with nothing above the last MARK pops the mark (`_pickle.c` load_pop).
    pub(crate) fn load_pop(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        if self.marks.last() == Some(&self.stack.len()) {
            self.marks.pop();
        } else {
            self.pop()?;
        }
        Ok(Flow::Continue)
    }

    pub(crate) fn load_pop_mark(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        self.pop_mark()?;
        Ok(Flow::Continue)
    }

    pub(crate) fn load_dup(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let t = self.top()?;
        self.push(t)?;
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use crate::limits::Limits;
    use crate::pickle::{Context, Graph, Input, Machine};
    use crate::policy::findings::{Findings, Rule};

    /// A frame that goes on after STOP: loaders resume at different places afterwards.
    #[test]
    fn frame_continuing_past_stop_is_reported() {
        let mut bytes = b"\x80\x04\x95".to_vec();
        bytes.extend(5u64.to_le_bytes());
        bytes.extend(b"K\x01.K\x02");
        let limits = Limits::default();
        let mut graph = Graph::new(&limits);
        let mut findings = Findings::default();
        let mut cursor = std::io::Cursor::new(&bytes[..]);
        let mut input = Input::new(&mut cursor, 0, bytes.len() as u64);
        Machine::new(&mut graph, &mut findings, &limits, Context::default())
            .load(&mut input)
            .unwrap();
        assert!(findings
            .items()
            .iter()
            .any(|f| f.rule == Rule::FrameInconsistency));
    }
}
