//! In-kernel copies of verbatim storage ranges from the input to the output file, so that the
//! bytes of a contiguous tensor never pass through user space.

use crate::error::{Error, Result};
use std::os::fd::{AsFd, BorrowedFd};

/// Copy `len` bytes at `offset` of `input` to the current position of `output`. `Ok(false)`
/// when the kernel refuses before copying anything (another filesystem, no support): the
/// caller then copies through user space.
pub fn copy_range(input: BorrowedFd<'_>, output: impl AsFd, offset: u64, len: u64) -> Result<bool> {
    let mut off_in =
        i64::try_from(offset).map_err(|_| Error::malformed("storage offset out of range"))?;
    let mut left = len;
    while left > 0 {
        let chunk = left.min(1 << 30) as usize;
        let n = match nix::fcntl::copy_file_range(
            input,
            Some(&mut off_in),
            output.as_fd(),
            None,
            chunk,
        ) {
            Ok(n) => n,
            Err(
                nix::errno::Errno::EXDEV
                | nix::errno::Errno::EOPNOTSUPP
                | nix::errno::Errno::ENOSYS
                | nix::errno::Errno::EINVAL,
            ) if left == len => return Ok(false),
            Err(e) => return Err(Error::Io(std::io::Error::from(e))),
        };
        if n == 0 {
            return Err(Error::malformed(format!(
                "input truncated: {left} bytes of a storage at offset {offset} are missing"
            )));
        }
        left -= n as u64;
    }
    Ok(true)
}
