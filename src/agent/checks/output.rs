//! Bounded capture of check output, and the two truncation formats Consul uses: probes keep
//! the *last* bytes (a circular buffer), TTL updates keep the *first* bytes.

use std::io;

/// Output limit used when a check does not set one (Consul's `DefaultBufSize`).
pub const DEFAULT_OUTPUT_MAX_SIZE: usize = 4 * 1024;

/// `0` means "not set": the default limit applies.
pub(crate) fn effective_max(max: usize) -> usize {
    if max == 0 {
        DEFAULT_OUTPUT_MAX_SIZE
    } else {
        max
    }
}

/// Keeps the last `capacity` bytes written to it and counts everything written.
#[derive(Debug)]
pub(crate) struct TailBuffer {
    capacity: usize,
    data: Vec<u8>,
    total: u64,
}

impl TailBuffer {
    pub(crate) fn new(capacity: usize) -> TailBuffer {
        TailBuffer {
            capacity,
            data: Vec::new(),
            total: 0,
        }
    }

    pub(crate) fn write(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        if chunk.len() >= self.capacity {
            self.data.clear();
            self.data
                .extend_from_slice(&chunk[chunk.len() - self.capacity..]);
            return;
        }
        self.data.extend_from_slice(chunk);
        if self.data.len() > self.capacity {
            let excess = self.data.len() - self.capacity;
            self.data.drain(..excess);
        }
    }

    /// Whether more bytes were written than are kept.
    pub(crate) fn truncated(&self) -> bool {
        self.total > self.capacity as u64
    }

    /// The kept bytes as text (invalid UTF-8, e.g. a character cut at the front, is replaced).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The kept bytes, prefixed `Captured N of M bytes\n...\n` when something was dropped
    /// (the form script checks report).
    pub(crate) fn text_with_capture_note(&self) -> String {
        if self.truncated() {
            format!(
                "Captured {} of {} bytes\n...\n{}",
                self.capacity,
                self.total,
                self.text()
            )
        } else {
            self.text()
        }
    }
}

impl io::Write for TailBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        TailBuffer::write(self, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Truncates output set through a TTL update, keeping the front:
/// `<first N bytes> ... (captured N of M bytes)`. `max == 0` means the default (4096).
///
/// The cut never splits a UTF-8 character; N is the number of bytes actually kept (equal to
/// `max` unless a multi-byte character straddled the limit). Output within the limit is
/// returned unchanged.
pub fn truncate_ttl_output(output: &str, max: usize) -> String {
    let max = effective_max(max);
    let total = output.len();
    if total <= max {
        return output.to_string();
    }
    let mut cut = max;
    while !output.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{} ... (captured {} of {} bytes)",
        &output[..cut],
        cut,
        total
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_buffer_keeps_the_last_bytes() {
        let mut buf = TailBuffer::new(5);
        buf.write(b"abc");
        assert!(!buf.truncated());
        assert_eq!(buf.text_with_capture_note(), "abc");
        buf.write(b"defg");
        assert!(buf.truncated());
        assert_eq!(buf.text(), "cdefg");
        buf.write(b"0123456789");
        assert_eq!(buf.text(), "56789");
        assert_eq!(
            buf.text_with_capture_note(),
            "Captured 5 of 17 bytes\n...\n56789"
        );
    }

    #[test]
    fn tail_buffer_exactly_full_is_not_truncated() {
        let mut buf = TailBuffer::new(4);
        buf.write(b"ab");
        buf.write(b"cd");
        assert!(!buf.truncated());
        assert_eq!(buf.text_with_capture_note(), "abcd");
    }

    #[test]
    fn ttl_output_keeps_the_front() {
        assert_eq!(truncate_ttl_output("short", 10), "short");
        assert_eq!(truncate_ttl_output("0123456789", 10), "0123456789");
        assert_eq!(
            truncate_ttl_output("0123456789abc", 10),
            "0123456789 ... (captured 10 of 13 bytes)"
        );
        let long = "x".repeat(5000);
        let out = truncate_ttl_output(&long, 0);
        assert_eq!(
            out,
            format!("{} ... (captured 4096 of 5000 bytes)", "x".repeat(4096))
        );
    }

    #[test]
    fn ttl_output_never_splits_a_character() {
        // "é" is two bytes: a 4-byte limit falls inside the third character.
        let out = truncate_ttl_output("aééé", 4);
        assert_eq!(out, "aé ... (captured 3 of 7 bytes)");
    }
}
