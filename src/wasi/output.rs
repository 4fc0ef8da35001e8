//! The guest's stdout (the safetensors stream), coalesced. WASIp1's `fd_write` hands a stdout
//! stream at most 4 KiB per call with a flush after each, which cost a `write` syscall per 4 KiB
//! (260 000 for 1 GiB, about half the conversion time). This stream gathers 1 MiB before it
//! writes; the guest's flushes are no-ops, and the host writes the rest with [`finish`] after
//! the guest ended and before it validates the file. The output is still append-only.
//!
//! [`finish`]: BufferedOutput::finish

use bytes::Bytes;
use std::fs::File;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

const CHUNK: usize = 1 << 20;

struct Inner {
    file: File,
    buf: Vec<u8>,
}

impl Inner {
    fn push(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.file.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct BufferedOutput {
    inner: Arc<Mutex<Inner>>,
}

impl BufferedOutput {
    pub fn new(file: File) -> BufferedOutput {
        BufferedOutput {
            inner: Arc::new(Mutex::new(Inner {
                file,
                buf: Vec::with_capacity(CHUNK),
            })),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> std::io::Result<T>) -> std::io::Result<T> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| std::io::Error::other("the output stream's lock is poisoned"))?;
        f(&mut inner)
    }

    /// Write what is still buffered (the host calls this once the guest has ended).
    pub fn finish(&self) -> std::io::Result<()> {
        self.with(|inner| {
            inner.file.write_all(&inner.buf)?;
            inner.buf.clear();
            Ok(())
        })
    }
}

fn stream_error(e: std::io::Error) -> StreamError {
    StreamError::LastOperationFailed(wasmtime::format_err!(e))
}

impl IsTerminal for BufferedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for BufferedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for BufferedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for BufferedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.with(|inner| inner.push(&bytes)).map_err(stream_error)
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(CHUNK)
    }
}

impl tokio::io::AsyncWrite for BufferedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.with(|inner| inner.push(buf)).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
