//! Line framing over the socket, with reply batching for PIPELINING.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::limits::{FINAL_WRITE_TIMEOUT, LINGER_TIME, READ_BUFFER};

/// Outcome of reading one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line {
    /// A full line, terminator included, was appended.
    Complete,
    /// Peer closed; any partial line is garbage the caller must ignore.
    Eof,
    /// Line exceeds the limit; the connection cannot be resynchronised.
    TooLong,
}

/// Buffered connection. Replies are queued in `out` and only written when
/// the server is about to wait for input, which answers a pipelined batch
/// with one write while keeping replies in command order.
pub(super) struct Conn {
    reader: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    out: Vec<u8>,
}

/// A connection's byte stream: TCP, or a unix socket for LMTP.
pub(super) trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for S {}

impl Conn {
    pub(super) fn new(stream: impl Stream) -> Self {
        let (read, write) = tokio::io::split(stream);
        Self {
            reader: BufReader::with_capacity(READ_BUFFER, Box::new(read)),
            writer: Box::new(write),
            out: Vec::with_capacity(512),
        }
    }

    /// Queues raw reply bytes.
    pub(super) fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    pub(super) async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.writer.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Appends one line (up to and including `\n`) to `buf`. `max` bounds the
    /// line without its `\r\n` or `\n`. Stops as soon as the bound is passed
    /// rather than reading on, since the caller drops the connection anyway.
    pub(super) async fn read_line(
        &mut self,
        buf: &mut Vec<u8>,
        max: usize,
    ) -> std::io::Result<Line> {
        let start = buf.len();
        // Room for the terminator; the exact content length is checked below.
        let limit = max.saturating_add(2);
        loop {
            if self.reader.buffer().is_empty() {
                // About to block on the peer: it may be waiting for replies.
                self.flush().await?;
            }
            let avail = self.reader.fill_buf().await?;
            if avail.is_empty() {
                return Ok(Line::Eof);
            }
            let (take, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            if buf.len() - start + take > limit {
                return Ok(Line::TooLong);
            }
            buf.extend_from_slice(&avail[..take]);
            self.reader.consume(take);
            if done {
                let line = &buf[start..];
                let content = line.len() - terminator_len(line);
                return Ok(if content > max {
                    Line::TooLong
                } else {
                    Line::Complete
                });
            }
        }
    }

    /// Sends what is queued, then closes gracefully: FIN first, then drain
    /// briefly so unread input does not turn our close into an RST.
    pub(super) async fn close(mut self) {
        let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, async {
            self.flush().await?;
            self.writer.shutdown().await
        })
        .await;
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(LINGER_TIME, async {
            let reader = self.reader.get_mut();
            loop {
                match reader.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}

/// Length of the line terminator (`\r\n`, `\n` or none) at the end of `line`.
pub(super) fn terminator_len(line: &[u8]) -> usize {
    if line.ends_with(b"\r\n") {
        2
    } else if line.ends_with(b"\n") {
        1
    } else {
        0
    }
}
