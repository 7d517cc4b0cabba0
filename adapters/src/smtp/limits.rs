//! Fixed policy numbers that are not part of [`super::SmtpConfig`].

use std::time::Duration;

/// Protocol errors tolerated before the session is dropped with `421`;
/// a client this confused is either broken or probing.
pub(super) const MAX_ERRORS: u32 = 10;

/// How long sessions still in a transaction may run after shutdown starts.
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Cap on draining input before closing: closing a socket with unread input
/// makes the kernel send RST, which can destroy our last reply in flight.
pub(super) const LINGER_TIME: Duration = Duration::from_secs(1);

/// Upper bound for writing the last reply of a doomed connection, so a peer
/// that never reads cannot keep the task alive.
pub(super) const FINAL_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause after a failed `accept`, typically out of file descriptors, so the
/// loop does not spin while the condition lasts.
pub(super) const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// RFC 5321 4.5.3.1.3: a path is at most 256 octets including the brackets.
pub(super) const MAX_PATH_BYTES: usize = 256;

/// Largest `SIZE=` we pre-allocate for: the declared size is only a hint
/// from the peer, so it must not be able to make us reserve much memory.
pub(super) const MAX_PREALLOC: usize = 1024 * 1024;
/// A message buffer this full grows to the whole allowance at once (`data.rs`).
pub(super) const ONE_STEP_ABOVE: usize = 1024 * 1024;

/// Read buffer per connection. Lines are copied out of it, so it only sets
/// the syscall granularity; 8 KiB keeps 1000 idle sessions cheap.
pub(super) const READ_BUFFER: usize = 8 * 1024;
