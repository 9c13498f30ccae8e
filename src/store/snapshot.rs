//! Snapshots: a consistent, point-in-time archive of the whole store, taken from one redb read
//! transaction (MVCC: writers keep going), and its atomic restore as one write operation.
//!
//! The archive has Consul's container layout (`snapshot/archive.go`): a gzip-compressed tar
//! holding, in this order,
//!
//! * `meta.json`: Consul's snapshot metadata (`Version`, `ID`, `Index`, `Term`, `Size`, the
//!   size of `state.bin`) plus Legate's own header under `Legate`;
//! * `state.bin`: Legate's records (below), not Consul's Raft encoding;
//! * `SHA256SUMS`: `<hex sha-256>  <name>` lines for the two files above.
//!
//! So tools that recognize Consul snapshots see the shape they expect, and a Consul snapshot
//! given to Legate is recognized (its `meta.json` has no `Legate` header, its `state.bin` no
//! Legate magic) and refused before anything is touched.
//!
//! `state.bin` (format version 1) copies every record table (`tables::RECORD_TABLES`) row by
//! row as raw bytes — the stored values are already versioned `codec` envelopes, so nothing
//! is decoded — plus the `meta` facts (global index, schema version) and `table_index`, in its
//! header. Integers are big-endian:
//!
//! ```text
//! magic     16 bytes   "LEGATE-SNAPSHOT\n"
//! header    u32 n, then n bytes of JSON `Metadata` (format and schema version, global index,
//!           creation time, node, datacenter, Legate and Consul versions, table names, table
//!           indexes)
//! records   per row: u8 t (1-based position of the row's table in the header's `Tables`),
//!           u32 key length, key (UTF-8), u32 value length, value (the stored bytes)
//! end       u8 0, then u64 number of records
//! checksum  32 bytes: SHA-256 of every byte before it
//! ```
//!
//! Earlier Legate versions wrote `state.bin` alone as the whole archive; `receive` still reads
//! those.
//!
//! Nothing is held in memory whole: `export` writes the archive as it walks the tables (a
//! first pass over the same read transaction sizes `state.bin` for its tar header), and
//! `receive` streams an archive into an unnamed temporary file, checking the first bytes
//! before reading on, so a foreign or bogus input is refused after its header. `verify` then
//! checks the state (checksum first, then structure): a truncated or altered archive fails
//! the checksum, and one from a newer schema, a newer format or with a table this build does
//! not know is refused. `load` upgrades an archive from an older schema by running the
//! migrations on a scratch database, and checks that every record decodes.
//!
//! Restore (`restore`) replaces every record table in a single operation of `Store::write`, so
//! it is atomic, durable and undone as a whole if it fails. Entries keep the indexes they had
//! in the snapshot; the global index never goes backwards (it becomes the larger of the
//! store's and the snapshot's), and every table's index becomes the restore's own, above
//! both. The restore wakes every watch (`WriteTx::wake_all`), and blocking reads waiting since
//! before it return with an `X-Consul-Index` at least the restore's.

use super::error::{Result, StoreError};
use super::tables::{
    self, MAX_INDEX, META, META_INDEX, META_SCHEMA_VERSION, RECORD_TABLES, SCHEMA_VERSION,
    TABLE_INDEX,
};
use super::tx::{read_global_index, read_meta, ReadTx, WriteTx};
use super::{migrate, Command, Store, DB_FILE};
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable};
use ring::digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The first bytes of every `state.bin` (and of the whole archive in the earlier layout).
pub const MAGIC: &[u8; 16] = b"LEGATE-SNAPSHOT\n";
/// The `state.bin` layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const GZIP_MAGIC: &[u8; 2] = &[0x1f, 0x8b];
const META_FILE: &str = "meta.json";
const STATE_FILE: &str = "state.bin";
const SUMS_FILE: &str = "SHA256SUMS";
/// Raft's snapshot format version, which Consul's `meta.json` carries as `Version`.
const RAFT_SNAPSHOT_VERSION: u32 = 1;
/// `meta.json` and `SHA256SUMS` larger than this are not ones Legate wrote.
const MAX_SMALL_FILE: u64 = 1 << 20;
const DIGEST_LEN: usize = 32;
/// Table number of the end marker.
const END: u8 = 0;
/// End marker plus record count.
const END_LEN: usize = 1 + 8;
/// A header larger than this is not one this build wrote.
const MAX_HEADER: usize = 1 << 20;
const TAR_BLOCK: usize = 512;
/// The largest file a plain (octal) tar header can describe.
const MAX_TAR_FILE: u64 = 0o77777777777;

/// What an archive says about itself (the JSON header of `state.bin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    /// `state.bin` layout version (`FORMAT_VERSION`).
    pub format: u32,
    /// Schema version of the store the records come from.
    pub schema_version: u64,
    /// The global index the snapshot was taken at.
    pub index: u64,
    /// When it was taken: RFC 3339, UTC.
    pub created_at: String,
    /// The same, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Node and datacenter of the agent that took it (empty for an offline save).
    pub node: String,
    pub datacenter: String,
    pub legate_version: String,
    pub consul_version: String,
    /// The record tables, in the order record table numbers refer to.
    pub tables: Vec<String>,
    /// `table_index` at the snapshot: table → index of its last write.
    pub table_indexes: BTreeMap<String, u64>,
}

impl Metadata {
    /// An ID in the shape of Consul's (`<term>-<index>-<unix ms>`; a single node's term is 1).
    pub fn id(&self) -> String {
        format!("1-{}-{}", self.index, self.created_at_ms)
    }
}

/// `meta.json`: Consul's snapshot metadata (Raft's `SnapshotMeta`), plus Legate's header.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerMeta {
    version: u32,
    #[serde(rename = "ID")]
    id: String,
    index: u64,
    term: u64,
    /// Size of `state.bin` in bytes.
    size: u64,
    /// Absent from Consul's own snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    legate: Option<Metadata>,
}

/// Who is taking the snapshot, recorded in its metadata.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub node: String,
    pub datacenter: String,
}

fn invalid(reason: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("invalid snapshot: {reason}"))
}

fn write_error(err: std::io::Error) -> StoreError {
    StoreError::Storage(format!("cannot write snapshot: {err}"))
}

fn read_error(err: std::io::Error) -> StoreError {
    match err.kind() {
        std::io::ErrorKind::UnexpectedEof => invalid("truncated (it ends too early)"),
        _ => invalid(format!("cannot read it: {err}")),
    }
}

fn consul_snapshot() -> StoreError {
    invalid(
        "this is a Consul snapshot: its state.bin holds Consul's Raft encoding, which Legate \
         cannot read; Legate restores only snapshots taken by Legate",
    )
}

/// `ms` since the Unix epoch as RFC 3339 UTC (`2024-05-01T12:00:00.123Z`).
fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ----- tar, as Go's archive/tar writes Consul's snapshots (ustar, regular files) -----

/// A ustar header for a regular file.
fn tar_header(name: &str, size: u64, mtime_secs: u64) -> Result<[u8; TAR_BLOCK]> {
    if size > MAX_TAR_FILE {
        return Err(StoreError::Storage(format!(
            "cannot write snapshot: {name} of {size} bytes is larger than a tar header holds"
        )));
    }
    let mut h = [0u8; TAR_BLOCK];
    let field = |h: &mut [u8; TAR_BLOCK], at: usize, value: &[u8]| {
        h[at..at + value.len()].copy_from_slice(value);
    };
    field(&mut h, 0, name.as_bytes());
    field(&mut h, 100, b"0000600\0");
    field(&mut h, 108, b"0000000\0");
    field(&mut h, 116, b"0000000\0");
    field(&mut h, 124, format!("{size:011o}\0").as_bytes());
    field(
        &mut h,
        136,
        format!("{:011o}\0", mtime_secs.min(MAX_TAR_FILE)).as_bytes(),
    );
    h[156] = b'0';
    field(&mut h, 257, b"ustar\x0000");
    // The checksum is computed with its own field read as spaces.
    field(&mut h, 148, b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    field(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

fn tar_padding(size: u64) -> usize {
    (TAR_BLOCK - (size % TAR_BLOCK as u64) as usize) % TAR_BLOCK
}

/// One entry of a tar stream: its name, size and type flag.
struct TarEntry {
    name: String,
    size: u64,
    kind: u8,
}

/// Reads the next tar header; `None` at the end-of-archive block.
fn next_tar_entry(r: &mut impl Read) -> Result<Option<TarEntry>> {
    let mut h = [0u8; TAR_BLOCK];
    r.read_exact(&mut h).map_err(read_error)?;
    if h.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let octal = |field: &[u8]| -> Option<u64> {
        let text = std::str::from_utf8(field).ok()?;
        let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
        if text.is_empty() {
            return Some(0);
        }
        u64::from_str_radix(text, 8).ok()
    };
    let declared = octal(&h[148..156]);
    let mut blank = h;
    blank[148..156].copy_from_slice(b"        ");
    let sum: u64 = blank.iter().map(|&b| u64::from(b)).sum();
    if declared != Some(sum) {
        return Err(invalid("not a tar archive (a header's checksum is wrong)"));
    }
    let name_end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
    let name = String::from_utf8_lossy(&h[..name_end]).into_owned();
    let size = octal(&h[124..136]).ok_or_else(|| invalid("a tar header's size is unreadable"))?;
    Ok(Some(TarEntry {
        name,
        size,
        kind: h[156],
    }))
}

/// Reads a whole small file of `size` bytes (`meta.json`, `SHA256SUMS`).
fn read_small(r: &mut impl Read, name: &str, size: u64) -> Result<Vec<u8>> {
    if size > MAX_SMALL_FILE {
        return Err(invalid(format!("{name} of {size} bytes is too large")));
    }
    let mut out = vec![0u8; size as usize];
    r.read_exact(&mut out).map_err(read_error)?;
    Ok(out)
}

fn skip(r: &mut impl Read, n: u64) -> Result<()> {
    let copied = std::io::copy(&mut r.take(n), &mut std::io::sink()).map_err(read_error)?;
    if copied != n {
        return Err(invalid("truncated (it ends inside a file)"));
    }
    Ok(())
}

// ----- writing -----

/// Writes `state.bin`, hashing it twice: its own trailing checksum covers every byte before
/// it, `SHA256SUMS` the whole file.
struct StateWriter<W: Write> {
    out: W,
    inner: digest::Context,
    whole: digest::Context,
    written: u64,
}

impl<W: Write> StateWriter<W> {
    fn new(out: W) -> Self {
        StateWriter {
            out,
            inner: digest::Context::new(&digest::SHA256),
            whole: digest::Context::new(&digest::SHA256),
            written: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.inner.update(bytes);
        self.whole.update(bytes);
        self.written += bytes.len() as u64;
        self.out.write_all(bytes).map_err(write_error)
    }

    /// Appends the checksum; returns the SHA-256 of the whole file and its size.
    fn finish(mut self) -> Result<(digest::Digest, u64)> {
        let sum = self.inner.finish();
        self.whole.update(sum.as_ref());
        self.out.write_all(sum.as_ref()).map_err(write_error)?;
        Ok((self.whole.finish(), self.written + DIGEST_LEN as u64))
    }
}

type RawTable = redb::ReadOnlyTable<&'static str, &'static [u8]>;

/// The record tables present in `txn`, with their numbers in the header's `Tables`.
fn record_tables(txn: &ReadTransaction) -> Result<Vec<(u8, RawTable)>> {
    let mut out = Vec::new();
    for (number, t) in RECORD_TABLES.iter().enumerate() {
        match txn.open_table(tables::raw(t.name)) {
            Ok(table) => {
                let number = u8::try_from(number + 1).expect("fewer than 255 record tables");
                out.push((number, table));
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// A snapshot ready to be written from one read transaction: its metadata is known (and
/// can be announced, e.g. as `X-Consul-Index`) before the first byte goes out.
pub struct Export<'t> {
    txn: &'t ReadTransaction,
    pub meta: Metadata,
    header: Vec<u8>,
    state_size: u64,
}

impl<'t> Export<'t> {
    /// Reads the metadata and sizes `state.bin` (a pass over the keys and values' lengths).
    pub fn prepare(read: &'t ReadTx, origin: &Origin) -> Result<Export<'t>> {
        Export::of_txn(&read.txn, origin, crate::clock::now_ms())
    }

    fn of_txn(txn: &'t ReadTransaction, origin: &Origin, created_at_ms: u64) -> Result<Self> {
        let mut table_indexes = BTreeMap::new();
        match txn.open_table(TABLE_INDEX) {
            Ok(t) => {
                for row in t.iter()? {
                    let (k, v) = row?;
                    table_indexes.insert(k.value().to_string(), v.value());
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let meta = Metadata {
            format: FORMAT_VERSION,
            schema_version: read_meta(txn, META_SCHEMA_VERSION)?,
            index: read_global_index(txn)?,
            created_at: rfc3339(created_at_ms),
            created_at_ms,
            node: origin.node.clone(),
            datacenter: origin.datacenter.clone(),
            legate_version: env!("CARGO_PKG_VERSION").to_string(),
            consul_version: crate::config::CONSUL_VERSION.to_string(),
            tables: RECORD_TABLES.iter().map(|t| t.name.to_string()).collect(),
            table_indexes,
        };
        let header = serde_json::to_vec(&meta).map_err(StoreError::storage)?;
        let mut state_size = (MAGIC.len() + 4 + header.len() + END_LEN + DIGEST_LEN) as u64;
        for (_, table) in record_tables(txn)? {
            for row in table.iter()? {
                let (k, v) = row?;
                state_size += Archive::record_size(k.value(), v.value());
            }
        }
        Ok(Export {
            txn,
            meta,
            header,
            state_size,
        })
    }

    /// Writes the archive (gzip-compressed tar) to `out`.
    pub fn write(self, out: impl Write) -> Result<Metadata> {
        let mtime = self.meta.created_at_ms / 1000;
        let container = ContainerMeta {
            version: RAFT_SNAPSHOT_VERSION,
            id: self.meta.id(),
            index: self.meta.index,
            term: 1,
            size: self.state_size,
            legate: Some(self.meta.clone()),
        };
        let mut meta_json = serde_json::to_vec(&container).map_err(StoreError::storage)?;
        meta_json.push(b'\n');
        let mut gz = flate2::write::GzEncoder::new(
            std::io::BufWriter::with_capacity(256 * 1024, out),
            flate2::Compression::fast(),
        );
        let file = |gz: &mut flate2::write::GzEncoder<_>, name: &str, body: &[u8]| {
            gz.write_all(&tar_header(name, body.len() as u64, mtime)?)
                .and_then(|()| gz.write_all(body))
                .and_then(|()| gz.write_all(&[0; TAR_BLOCK][..tar_padding(body.len() as u64)]))
                .map_err(write_error)
        };
        file(&mut gz, META_FILE, &meta_json)?;
        gz.write_all(&tar_header(STATE_FILE, self.state_size, mtime)?)
            .map_err(write_error)?;
        let mut state = StateWriter::new(&mut gz);
        state.put(MAGIC)?;
        state.put(&(self.header.len() as u32).to_be_bytes())?;
        state.put(&self.header)?;
        let mut count: u64 = 0;
        for (number, table) in record_tables(self.txn)? {
            for row in table.iter()? {
                let (k, v) = row?;
                let (key, value) = (k.value().as_bytes(), v.value());
                state.put(&[number])?;
                state.put(&(key.len() as u32).to_be_bytes())?;
                state.put(key)?;
                state.put(&(value.len() as u32).to_be_bytes())?;
                state.put(value)?;
                count += 1;
            }
        }
        state.put(&[END])?;
        state.put(&count.to_be_bytes())?;
        let (state_sum, written) = state.finish()?;
        if written != self.state_size {
            return Err(StoreError::Storage(format!(
                "cannot write snapshot: state.bin came to {written} bytes, sized at {}",
                self.state_size
            )));
        }
        gz.write_all(&[0; TAR_BLOCK][..tar_padding(written)])
            .map_err(write_error)?;
        let sums = format!(
            "{}  {META_FILE}\n{}  {STATE_FILE}\n",
            hex(digest::digest(&digest::SHA256, &meta_json).as_ref()),
            hex(state_sum.as_ref())
        );
        file(&mut gz, SUMS_FILE, sums.as_bytes())?;
        gz.write_all(&[0; 2 * TAR_BLOCK]).map_err(write_error)?;
        gz.finish()
            .and_then(|mut out| out.flush())
            .map_err(write_error)?;
        Ok(self.meta)
    }
}

/// Writes a snapshot of `read` to `out` and returns its metadata.
pub fn export(read: &ReadTx, origin: &Origin, out: impl Write) -> Result<Metadata> {
    Export::prepare(read, origin)?.write(out)
}

/// Takes a snapshot of a stopped agent's data dir, reading its database file directly. Fails
/// with `StoreError::Locked` while an agent holds it.
pub fn save_offline(data_dir: &Path, out: impl Write) -> Result<Metadata> {
    let path = data_dir.join(DB_FILE);
    if !path.is_file() {
        return Err(StoreError::Invalid(format!(
            "no Legate data in {} (missing {DB_FILE})",
            data_dir.display()
        )));
    }
    let db = Database::open(&path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            StoreError::Locked(data_dir.display().to_string())
        }
        other => StoreError::storage(other),
    })?;
    let found = migrate::schema_version(&db)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let txn = db.begin_read()?;
    Export::of_txn(&txn, &Origin::default(), crate::clock::now_ms())?.write(out)
}

// ----- reading -----

/// A reader that hashes what passes through it.
struct HashingReader<R: Read> {
    inner: R,
    hash: digest::Context,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads a file from an offset without moving a shared cursor.
struct FileReader<'f> {
    file: &'f File,
    pos: u64,
    end: u64,
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Streams an archive from `input` into an unnamed temporary file in `dir` and verifies it.
/// The first bytes decide: a gzip stream is read as the tar container, Legate's magic as the
/// earlier bare layout; anything else is refused before more is read, and so is a container
/// whose `meta.json` or `state.bin` show it to be Consul's.
pub fn receive(mut input: impl Read, dir: &Path) -> Result<Archive> {
    let mut head = Vec::with_capacity(MAGIC.len());
    (&mut input)
        .take(MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(read_error)?;
    let temp = || tempfile::tempfile_in(dir).map_err(StoreError::storage);
    if head.starts_with(GZIP_MAGIC) {
        let gz = flate2::read::GzDecoder::new(head.as_slice().chain(input));
        receive_container(gz, temp()?)
    } else if head.as_slice() == MAGIC {
        let mut state = temp()?;
        state.write_all(&head).map_err(write_error)?;
        std::io::copy(&mut input, &mut state).map_err(read_error)?;
        verify(state)
    } else if !head.is_empty() && MAGIC.starts_with(&head) {
        Err(invalid("truncated (it ends inside the header)"))
    } else {
        Err(invalid(
            "not a Legate snapshot (neither a gzip archive nor a LEGATE-SNAPSHOT state)",
        ))
    }
}

/// Reads the tar container: `meta.json` first (a Consul one is refused there), `state.bin`
/// into `state`, then `SHA256SUMS`, which must list exactly those two files with their sums.
fn receive_container(gz: impl Read, mut state: File) -> Result<Archive> {
    let mut tar = BufReader::with_capacity(256 * 1024, gz);
    let mut container: Option<(ContainerMeta, digest::Digest)> = None;
    let mut state_sum: Option<(digest::Digest, u64)> = None;
    let mut sums: Option<Vec<u8>> = None;
    while let Some(entry) = next_tar_entry(&mut tar)? {
        // Extended headers (Go writes them only for long names or huge files) carry nothing
        // this reader needs.
        if matches!(entry.kind, b'x' | b'g') {
            skip(&mut tar, entry.size + tar_padding(entry.size) as u64)?;
            continue;
        }
        match entry.name.as_str() {
            META_FILE => {
                let bytes = read_small(&mut tar, META_FILE, entry.size)?;
                let meta: ContainerMeta = serde_json::from_slice(&bytes)
                    .map_err(|e| invalid(format!("unreadable meta.json: {e}")))?;
                if meta.legate.is_none() {
                    return Err(consul_snapshot());
                }
                container = Some((meta, digest::digest(&digest::SHA256, &bytes)));
            }
            STATE_FILE => {
                let mut hashing = HashingReader {
                    inner: (&mut tar).take(entry.size),
                    hash: digest::Context::new(&digest::SHA256),
                };
                // Consul's state.bin (Raft's encoding) is known by its first bytes.
                let mut head = [0u8; MAGIC.len()];
                if entry.size < MAGIC.len() as u64 {
                    return Err(consul_snapshot());
                }
                hashing.read_exact(&mut head).map_err(read_error)?;
                if &head != MAGIC {
                    return Err(consul_snapshot());
                }
                state.write_all(&head).map_err(write_error)?;
                let copied = std::io::copy(&mut hashing, &mut state).map_err(read_error)?;
                if copied + MAGIC.len() as u64 != entry.size {
                    return Err(invalid("truncated (it ends inside state.bin)"));
                }
                state_sum = Some((hashing.hash.finish(), entry.size));
            }
            SUMS_FILE => sums = Some(read_small(&mut tar, SUMS_FILE, entry.size)?),
            other => return Err(invalid(format!("unexpected file {other:?} in the archive"))),
        }
        skip(&mut tar, tar_padding(entry.size) as u64)?;
    }
    // Reading to the end of the gzip stream checks its trailer (CRC and length): a container
    // cut short after the tar's end blocks is still truncated.
    std::io::copy(&mut tar, &mut std::io::sink()).map_err(read_error)?;
    let (container, meta_sum) = container.ok_or_else(|| invalid("meta.json is missing"))?;
    let (state_sum, state_size) = state_sum.ok_or_else(|| invalid("state.bin is missing"))?;
    let sums = sums.ok_or_else(|| invalid("SHA256SUMS is missing"))?;
    check_sums(&sums, &[(META_FILE, meta_sum), (STATE_FILE, state_sum)])?;
    let archive = verify(state)?;
    if container.size != state_size || container.index != archive.meta.index {
        return Err(invalid("meta.json does not describe its state.bin"));
    }
    Ok(archive)
}

/// Checks `SHA256SUMS` (Consul's `hashList`): every line names one of `expected` with its
/// sum, and every expected file has a line.
fn check_sums(sums: &[u8], expected: &[(&str, digest::Digest)]) -> Result<()> {
    let text = std::str::from_utf8(sums).map_err(|_| invalid("SHA256SUMS is not text"))?;
    let mut seen = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (sum, name) = line
            .split_once("  ")
            .ok_or_else(|| invalid(format!("SHA256SUMS line {line:?} is malformed")))?;
        let (_, digest) = expected
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| invalid(format!("SHA256SUMS lists an unexpected file {name:?}")))?;
        if !sum.eq_ignore_ascii_case(&hex(digest.as_ref())) {
            return Err(invalid(format!(
                "SHA-256 checksum mismatch for {name}: the archive is truncated or corrupt"
            )));
        }
        seen.push(name);
    }
    match expected.iter().find(|(n, _)| !seen.contains(n)) {
        Some((missing, _)) => Err(invalid(format!("SHA256SUMS has no sum for {missing}"))),
        None => Ok(()),
    }
}

/// A verified archive: its `state.bin` in an unnamed temporary file, with what its header said.
pub struct Archive {
    state: File,
    state_len: u64,
    pub meta: Metadata,
    /// `meta.tables` resolved to this build's table names.
    tables: Vec<&'static str>,
    /// Where the records lie in `state`.
    records: Range<u64>,
    /// Number of records.
    pub count: u64,
}

/// A restore command carries `state.bin`'s bytes; decoding verifies them again, so an entry
/// from a log is as trustworthy as an upload.
impl bincode::Encode for Archive {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        encoder: &mut E,
    ) -> std::result::Result<(), bincode::error::EncodeError> {
        let mut data = Vec::with_capacity(self.state_len as usize);
        self.reader(0..self.state_len)
            .read_to_end(&mut data)
            .map_err(|e| bincode::error::EncodeError::OtherString(e.to_string()))?;
        data.encode(encoder)
    }
}

impl<C> bincode::Decode<C> for Archive {
    fn decode<D: bincode::de::Decoder<Context = C>>(
        decoder: &mut D,
    ) -> std::result::Result<Self, bincode::error::DecodeError> {
        let data: Vec<u8> = bincode::Decode::decode(decoder)?;
        let other = |e: StoreError| bincode::error::DecodeError::OtherString(e.to_string());
        let mut state = tempfile::tempfile().map_err(|e| other(StoreError::storage(e)))?;
        state.write_all(&data).map_err(|e| other(write_error(e)))?;
        verify(state).and_then(load).map_err(other)
    }
}

bincode::impl_borrow_decode!(Archive);

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("index", &self.meta.index)
            .field("size", &self.state_len)
            .field("count", &self.count)
            .finish()
    }
}

/// One record of an archive: table, key, stored bytes.
pub type RawRecord = (&'static str, String, Vec<u8>);

/// Reads the framing of `state.bin`, tracking the position so that no length read from the
/// file makes it allocate more than the file still holds.
struct Cursor<R: Read> {
    r: R,
    pos: u64,
    end: u64,
}

impl<R: Read> Cursor<R> {
    fn take(&mut self, n: u64) -> Result<Vec<u8>> {
        if self.end - self.pos < n {
            return Err(invalid(format!(
                "record runs past the end at byte {}",
                self.pos
            )));
        }
        let mut out = vec![0u8; n as usize];
        self.r.read_exact(&mut out).map_err(read_error)?;
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N as u64)?.try_into().expect("N bytes"))
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

/// Reads the record at the cursor; `None` at the end marker.
fn next_record(c: &mut Cursor<impl Read>, tables: &[&'static str]) -> Result<Option<RawRecord>> {
    let number = c.u8()?;
    if number == END {
        return Ok(None);
    }
    let table = *tables.get(usize::from(number) - 1).ok_or_else(|| {
        invalid(format!(
            "record names table number {number}, not in the header"
        ))
    })?;
    let key_len = c.u32()?;
    let key = String::from_utf8(c.take(key_len.into())?)
        .map_err(|_| invalid(format!("a key of table {table} is not UTF-8")))?;
    let value_len = c.u32()?;
    let value = c.take(value_len.into())?;
    Ok(Some((table, key, value)))
}

/// Checks a whole `state.bin`: checksum, magic, header, versions, tables and every record's
/// framing. Nothing is restored from an archive that did not pass.
pub fn verify(state: File) -> Result<Archive> {
    let len = state.metadata().map_err(StoreError::storage)?.len();
    let min = (MAGIC.len() + 4 + END_LEN + DIGEST_LEN) as u64;
    if len < min {
        return Err(invalid(format!(
            "truncated ({len} bytes, shorter than any snapshot)"
        )));
    }
    let body_end = len - DIGEST_LEN as u64;
    let mut hashing = HashingReader {
        inner: FileReader {
            file: &state,
            pos: 0,
            end: body_end,
        },
        hash: digest::Context::new(&digest::SHA256),
    };
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(read_error)?;
    let mut stored = [0u8; DIGEST_LEN];
    state
        .read_exact_at(&mut stored, body_end)
        .map_err(read_error)?;
    if hashing.hash.finish().as_ref() != stored {
        return Err(invalid(
            "SHA-256 checksum mismatch: the archive is truncated or corrupt",
        ));
    }
    let mut c = Cursor {
        r: BufReader::new(FileReader {
            file: &state,
            pos: 0,
            end: body_end,
        }),
        pos: 0,
        end: body_end,
    };
    if c.array::<16>()? != *MAGIC {
        return Err(invalid(
            "not a Legate snapshot (its state does not start with the LEGATE-SNAPSHOT header)",
        ));
    }
    let header_len = c.u32()? as usize;
    if header_len > MAX_HEADER {
        return Err(invalid(format!(
            "header of {header_len} bytes is too large"
        )));
    }
    let meta: Metadata = serde_json::from_slice(&c.take(header_len as u64)?)
        .map_err(|e| invalid(format!("unreadable header: {e}")))?;
    if meta.format != FORMAT_VERSION {
        return Err(invalid(format!(
            "archive format {} is not supported by this build (it reads format {FORMAT_VERSION}); \
             upgrade legate",
            meta.format
        )));
    }
    let highest = meta.table_indexes.values().chain([&meta.index]).max();
    if highest.is_some_and(|i| *i > MAX_INDEX) {
        return Err(invalid(format!(
            "index {} is beyond what this store can continue from (at most {MAX_INDEX})",
            highest.unwrap_or(&0)
        )));
    }
    if meta.schema_version > SCHEMA_VERSION {
        return Err(invalid(format!(
            "taken at schema version {}, newer than this build's {SCHEMA_VERSION}; upgrade legate",
            meta.schema_version
        )));
    }
    let tables = meta
        .tables
        .iter()
        .map(|name| {
            RECORD_TABLES
                .iter()
                .map(|t| t.name)
                .find(|n| n == name)
                .ok_or_else(|| invalid(format!("unknown table {name:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    if tables.len() >= usize::from(u8::MAX) {
        return Err(invalid("too many tables"));
    }
    let start = c.pos;
    let mut count = 0u64;
    while next_record(&mut c, &tables)?.is_some() {
        count += 1;
    }
    let records = start..c.pos;
    let declared = c.u64()?;
    if declared != count || c.pos != body_end {
        return Err(invalid(format!(
            "holds {count} records where its end says {declared}"
        )));
    }
    Ok(Archive {
        state,
        state_len: len,
        meta,
        tables,
        records,
        count,
    })
}

/// Prepares a verified archive for restore: upgrades one from an older schema to this
/// build's, and checks that every record decodes as its table's type.
pub fn load(archive: Archive) -> Result<Archive> {
    let archive = if archive.meta.schema_version < SCHEMA_VERSION {
        upgrade(archive)?
    } else {
        archive
    };
    // Anyone can recompute the checksum: every record must also decode as its table's type,
    // or a restore would leave rows that fail every read.
    for record in archive.records() {
        let (table, key, value) = record?;
        let t = RECORD_TABLES.iter().find(|t| t.name == table);
        if let Some(t) = t {
            (t.check)(table, &key, &value)
                .map_err(|e| invalid(format!("a record does not decode: {e}")))?;
        }
    }
    Ok(archive)
}

impl Archive {
    /// Size of its `state.bin` in bytes (Consul's `Size`).
    pub fn size(&self) -> u64 {
        self.state_len
    }

    fn reader(&self, range: Range<u64>) -> BufReader<FileReader<'_>> {
        BufReader::with_capacity(
            256 * 1024,
            FileReader {
                file: &self.state,
                pos: range.start,
                end: range.end,
            },
        )
    }

    /// Every record, in archive order.
    pub fn records(&self) -> impl Iterator<Item = Result<RawRecord>> + '_ {
        let mut c = Cursor {
            r: self.reader(self.records.start..self.records.end),
            pos: self.records.start,
            end: self.records.end,
        };
        std::iter::from_fn(move || next_record(&mut c, &self.tables).transpose())
    }

    /// Bytes a record takes in the archive.
    pub fn record_size(key: &str, value: &[u8]) -> u64 {
        (1 + 4 + key.len() + 4 + value.len()) as u64
    }
}

/// Replays an older-schema archive through this build's migrations on a scratch database and
/// exports its state again, keeping its index, origin and creation time.
fn upgrade(archive: Archive) -> Result<Archive> {
    let scratch = tempfile::tempdir().map_err(StoreError::storage)?;
    let db = Database::create(scratch.path().join(DB_FILE))?;
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert(META_SCHEMA_VERSION, archive.meta.schema_version)?;
        meta.insert(META_INDEX, archive.meta.index)?;
        let mut indexes = txn.open_table(TABLE_INDEX)?;
        for (name, index) in &archive.meta.table_indexes {
            indexes.insert(name.as_str(), *index)?;
        }
        for record in archive.records() {
            let (table, key, value) = record?;
            txn.open_table(tables::raw(table))?
                .insert(key.as_str(), value.as_slice())?;
        }
    }
    txn.commit()?;
    migrate::run(&db, SCHEMA_VERSION)?;
    let origin = Origin {
        node: archive.meta.node.clone(),
        datacenter: archive.meta.datacenter.clone(),
    };
    let read = db.begin_read()?;
    let export = Export::of_txn(&read, &origin, archive.meta.created_at_ms)?;
    let mut container = tempfile::tempfile().map_err(StoreError::storage)?;
    export.write(&mut container)?;
    receive(
        FileReader {
            file: &container,
            pos: 0,
            end: u64::MAX,
        },
        &std::env::temp_dir(),
    )
}

/// Replaces the whole store with `archive`, as one operation (see the module docs for the
/// index policy). Returns the restore's index.
pub(super) fn restore(tx: &mut WriteTx, archive: &Archive) -> Result<u64> {
    if archive.meta.schema_version != SCHEMA_VERSION {
        return Err(invalid(format!(
            "schema version {} needs upgrading first (snapshot::load)",
            archive.meta.schema_version
        )));
    }
    tx.raise_index(archive.meta.index);
    for t in RECORD_TABLES {
        tx.clear_table(t.name)?;
    }
    for record in archive.records() {
        let (table, key, value) = record?;
        tx.put_raw(table, &key, &value)?;
    }
    for t in RECORD_TABLES {
        tx.touch_table(t.name);
    }
    tx.wake_all();
    Ok(tx.index())
}

/// Restores `archive` into the data dir of a stopped agent (created if missing). Fails with
/// `StoreError::Locked` while an agent holds it.
pub async fn restore_offline(data_dir: &Path, archive: Archive) -> Result<u64> {
    let store = Store::open_to_replace(data_dir)?;
    let result = store
        .apply(Command::RestoreSnapshot(Box::new(archive)))
        .await
        .map(|o| o.restored_index());
    let closing = store.clone();
    let _ = tokio::task::spawn_blocking(move || closing.close()).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tables::KV;
    use crate::store::{Command, Readable};

    async fn store_with_data() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..50 {
            store
                .apply(Command::KvSet {
                    key: format!("k/{i:03}"),
                    value: vec![i as u8; 10],
                    flags: i,
                    cas: None,
                })
                .await
                .unwrap();
        }
        store
            .apply(Command::KvDelete {
                key: "k/007".into(),
                cas: None,
            })
            .await
            .unwrap();
        (dir, store)
    }

    fn snapshot(store: &Store) -> Vec<u8> {
        let mut out = Vec::new();
        export(&store.read().unwrap(), &Origin::default(), &mut out).unwrap();
        out
    }

    /// Reads an archive as `receive` does, from memory.
    fn open(data: Vec<u8>) -> Result<Archive> {
        receive(data.as_slice(), &std::env::temp_dir())
    }

    fn open_loaded(data: Vec<u8>) -> Result<Archive> {
        open(data).and_then(load)
    }

    /// The `state.bin` of an archive (which is also the earlier bare layout).
    fn state_of(data: Vec<u8>) -> Vec<u8> {
        let archive = open(data).unwrap();
        let mut out = Vec::new();
        archive
            .reader(0..archive.state_len)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// A gzip-compressed tar holding `files`, as Consul's archives are built.
    fn container(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for (name, body) in files {
            gz.write_all(&tar_header(name, body.len() as u64, 0).unwrap())
                .unwrap();
            gz.write_all(body).unwrap();
            gz.write_all(&[0; TAR_BLOCK][..tar_padding(body.len() as u64)])
                .unwrap();
        }
        gz.write_all(&[0; 2 * TAR_BLOCK]).unwrap();
        gz.finish().unwrap()
    }

    fn sums_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        files
            .iter()
            .map(|(name, body)| {
                format!(
                    "{}  {name}\n",
                    hex(digest::digest(&digest::SHA256, body).as_ref())
                )
            })
            .collect::<String>()
            .into_bytes()
    }

    fn rows(store: &Store, name: &'static str) -> Vec<(String, Vec<u8>)> {
        let read = store.read().unwrap();
        let Ok(t) = read.txn.open_table(tables::raw(name)) else {
            return Vec::new();
        };
        t.iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value().to_string(), v.value().to_vec())
            })
            .collect()
    }

    fn message(err: StoreError) -> String {
        match err {
            StoreError::Invalid(m) => m,
            other => panic!("expected Invalid, got {other}"),
        }
    }

    #[test]
    fn dates_render_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_735_689_599_000), "2024-12-31T23:59:59.000Z");
    }

    #[tokio::test]
    async fn round_trip_reproduces_every_table_and_keeps_the_index_climbing() {
        let (_dir, source) = store_with_data().await;
        let bytes = snapshot(&source);
        let archive = open_loaded(bytes).unwrap();
        let snap_index = source.read().unwrap().global_index().unwrap();
        assert_eq!(archive.meta.index, snap_index);
        assert_eq!(archive.meta.schema_version, SCHEMA_VERSION);

        let (_dir2, target) = store_with_data().await;
        for i in 0..80 {
            // The target is ahead of the snapshot: its index must not go backwards.
            target
                .apply(Command::kv_set(&format!("other/{i}"), b""))
                .await
                .unwrap();
        }
        let before = target.read().unwrap().global_index().unwrap();
        let restored_at = target
            .apply(Command::RestoreSnapshot(Box::new(archive)))
            .await
            .unwrap()
            .restored_index();
        assert_eq!(restored_at, before + 1);
        for t in RECORD_TABLES {
            assert_eq!(
                rows(&source, t.name),
                rows(&target, t.name),
                "table {}",
                t.name
            );
        }
        let read = target.read().unwrap();
        assert_eq!(read.global_index().unwrap(), restored_at);
        assert_eq!(read.table_index(KV.name).unwrap(), restored_at);
        let entry = read.get(KV, "k/010").unwrap().unwrap();
        assert!(entry.modify_index <= snap_index);
        drop(read);
        target.apply(Command::kv_set("after", b"")).await.unwrap();
        let next = target.read().unwrap().global_index().unwrap();
        assert_eq!(next, restored_at + 1);
    }

    #[tokio::test]
    async fn restoring_a_snapshot_from_a_higher_index_raises_the_index() {
        let (_dir, source) = store_with_data().await;
        let archive = open_loaded(snapshot(&source)).unwrap();
        let snap_index = archive.meta.index;
        let dir = tempfile::tempdir().unwrap();
        let target = Store::open(dir.path()).unwrap();
        let restored_at = target
            .apply(Command::RestoreSnapshot(Box::new(archive)))
            .await
            .unwrap()
            .restored_index();
        assert_eq!(restored_at, snap_index + 1);
        assert_eq!(rows(&source, KV.name), rows(&target, KV.name));
        // Durable: it survives a reopen, index included.
        target.close();
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(
            reopened.read().unwrap().global_index().unwrap(),
            restored_at
        );
        assert_eq!(rows(&source, KV.name), rows(&reopened, KV.name));
    }

    #[tokio::test]
    async fn every_damaged_byte_is_caught() {
        let (_dir, store) = store_with_data().await;
        let bytes = state_of(snapshot(&store));
        for at in [0, 20, bytes.len() / 2, bytes.len() - 40, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x01;
            let err = message(open(damaged).err().unwrap());
            assert!(
                err.contains("checksum") || err.contains("not a Legate snapshot"),
                "byte {at}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn truncated_archives_are_refused() {
        let (_dir, store) = store_with_data().await;
        let whole = snapshot(&store);
        for len in [5, 20, whole.len() / 2, whole.len() - 1] {
            let err = message(open(whole[..len].to_vec()).err().unwrap());
            assert!(
                err.contains("truncated"),
                "{len} bytes of the container: {err}"
            );
        }
        let bytes = state_of(whole);
        for len in [0, 5, 16, 40, bytes.len() / 2, bytes.len() - 1] {
            let err = message(open(bytes[..len].to_vec()).err().unwrap());
            assert!(
                err.contains("truncated") || err.contains("not a Legate snapshot"),
                "{len} bytes: {err}"
            );
        }
        // Extra bytes after the checksum break it too.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(message(open(longer).err().unwrap()).contains("checksum"));
    }

    #[test]
    fn foreign_files_are_named() {
        let text = b"{\"not\": \"a snapshot\"}".to_vec();
        assert!(message(open(text).err().unwrap()).contains("not a Legate snapshot"));
        let junk_gzip = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3];
        assert!(open(junk_gzip).is_err());
    }

    /// A Consul snapshot: Consul's `meta.json` (no Legate header) and its Raft state.
    #[test]
    fn consul_snapshots_are_refused_as_such() {
        let meta = br#"{"Version":1,"ID":"2-100-1700000000000","Index":100,"Term":2,"Peers":"kpAxMjcuMC4wLjE6ODMwMA==","Configuration":{"Servers":[]},"ConfigurationIndex":1,"Size":4}"#;
        let state: &[u8] = b"\x84\xa3Key";
        let files = [("meta.json", &meta[..]), ("state.bin", state)];
        let sums = sums_of(&files);
        let consul = container(&[files[0], files[1], ("SHA256SUMS", &sums)]);
        let err = message(open(consul).err().unwrap());
        assert!(err.contains("this is a Consul snapshot"), "{err}");
        // Even with a Legate-looking meta.json, a state that is not Legate's is named.
        let legate_meta = serde_json::to_vec(&ContainerMeta {
            version: 1,
            id: "1-9-0".into(),
            index: 9,
            term: 1,
            size: 4,
            legate: Some(header(SCHEMA_VERSION, &["kv"])),
        })
        .unwrap();
        let files = [("meta.json", legate_meta.as_slice()), ("state.bin", state)];
        let sums = sums_of(&files);
        let mixed = container(&[files[0], files[1], ("SHA256SUMS", &sums)]);
        assert!(message(open(mixed).err().unwrap()).contains("this is a Consul snapshot"));
    }

    #[tokio::test]
    async fn the_container_has_consuls_layout_and_checks_its_sums() {
        let (_dir, store) = store_with_data().await;
        let bytes = snapshot(&store);
        assert!(bytes.starts_with(GZIP_MAGIC));
        let mut tar = flate2::read::GzDecoder::new(bytes.as_slice());
        let mut names = Vec::new();
        let mut files = BTreeMap::new();
        while let Some(entry) = next_tar_entry(&mut tar).unwrap() {
            let mut body = vec![0; entry.size as usize];
            tar.read_exact(&mut body).unwrap();
            skip(&mut tar, tar_padding(entry.size) as u64).unwrap();
            names.push(entry.name.clone());
            files.insert(entry.name, body);
        }
        assert_eq!(names, ["meta.json", "state.bin", "SHA256SUMS"]);
        let meta: serde_json::Value = serde_json::from_slice(&files["meta.json"]).unwrap();
        let index = store.read().unwrap().global_index().unwrap();
        assert_eq!(meta["Index"], index);
        assert_eq!(meta["Term"], 1);
        assert_eq!(meta["Version"], 1);
        assert_eq!(meta["Size"], files["state.bin"].len() as u64);
        assert_eq!(
            meta["ID"],
            meta["Legate"]["CreatedAtMs"]
                .as_u64()
                .map(|ms| format!("1-{index}-{ms}"))
                .unwrap()
        );
        assert_eq!(meta["Legate"]["Index"], index);
        assert!(files["state.bin"].starts_with(MAGIC));
        let sums = String::from_utf8(files["SHA256SUMS"].clone()).unwrap();
        let state_sum = hex(digest::digest(&digest::SHA256, &files["state.bin"]).as_ref());
        assert!(
            sums.contains(&format!("{state_sum}  state.bin\n")),
            "{sums}"
        );
        // A sum that does not match, a missing sum and an unexpected file are refused.
        let forged_state = {
            let mut s = files["state.bin"].clone();
            let last = s.len() - 1;
            s[last] ^= 1;
            s
        };
        let rebuilt = |state: &[u8], sums: &[u8], extra: Option<(&str, &[u8])>| {
            let mut all = vec![
                ("meta.json", files["meta.json"].as_slice()),
                ("state.bin", state),
            ];
            all.extend(extra);
            all.push(("SHA256SUMS", sums));
            container(&all)
        };
        let err = message(
            open(rebuilt(&forged_state, sums.as_bytes(), None))
                .err()
                .unwrap(),
        );
        assert!(err.contains("checksum mismatch for state.bin"), "{err}");
        let only_meta = sums.lines().next().unwrap().to_string() + "\n";
        let err = message(
            open(rebuilt(&files["state.bin"], only_meta.as_bytes(), None))
                .err()
                .unwrap(),
        );
        assert!(err.contains("no sum for state.bin"), "{err}");
        let err = message(
            open(rebuilt(
                &files["state.bin"],
                sums.as_bytes(),
                Some(("extra", b"x")),
            ))
            .err()
            .unwrap(),
        );
        assert!(err.contains("unexpected file \"extra\""), "{err}");
    }

    /// Builds an archive with the given header and records, with a valid checksum.
    fn forge(meta: &Metadata, records: &[(u8, &str, &[u8])]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let header = serde_json::to_vec(meta).unwrap();
        out.extend((header.len() as u32).to_be_bytes());
        out.extend(header);
        for (t, k, v) in records {
            out.push(*t);
            out.extend((k.len() as u32).to_be_bytes());
            out.extend(k.as_bytes());
            out.extend((v.len() as u32).to_be_bytes());
            out.extend(*v);
        }
        out.push(END);
        out.extend((records.len() as u64).to_be_bytes());
        let sum = digest::digest(&digest::SHA256, &out);
        out.extend(sum.as_ref());
        out
    }

    fn header(schema_version: u64, tables: &[&str]) -> Metadata {
        Metadata {
            format: FORMAT_VERSION,
            schema_version,
            index: 9,
            created_at: rfc3339(0),
            created_at_ms: 0,
            node: "n".into(),
            datacenter: "dc1".into(),
            legate_version: "0".into(),
            consul_version: "0".into(),
            tables: tables.iter().map(|t| t.to_string()).collect(),
            table_indexes: BTreeMap::new(),
        }
    }

    /// Regression: a checksum anyone can recompute once let undecodable rows in, and every
    /// later read of them failed.
    #[test]
    fn records_that_do_not_decode_are_refused() {
        let forged = forge(
            &header(SCHEMA_VERSION, &["kv"]),
            &[(1, "k", b"\x01garbage")],
        );
        let err = message(open_loaded(forged).err().unwrap());
        assert!(err.contains("a record does not decode"), "{err}");
        assert!(err.contains("table kv at key \"k\""), "{err}");
    }

    /// Regression: an index at the top of the range restored, and the next write wrapped.
    #[test]
    fn indexes_that_cannot_grow_are_refused() {
        let mut top = header(SCHEMA_VERSION, &["kv"]);
        top.index = u64::MAX;
        let err = message(open(forge(&top, &[])).err().unwrap());
        assert!(
            err.contains("beyond what this store can continue from"),
            "{err}"
        );
        let mut table = header(SCHEMA_VERSION, &["kv"]);
        table.table_indexes.insert("kv".into(), MAX_INDEX + 1);
        assert!(open(forge(&table, &[])).is_err());
        let mut fine = header(SCHEMA_VERSION, &["kv"]);
        fine.index = MAX_INDEX;
        assert!(open(forge(&fine, &[])).is_ok());
    }

    #[test]
    fn newer_schemas_formats_and_unknown_tables_are_refused() {
        let newer = forge(&header(SCHEMA_VERSION + 1, &["kv"]), &[]);
        assert!(message(open(newer).err().unwrap()).contains("newer than this build"));
        let mut future = header(SCHEMA_VERSION, &["kv"]);
        future.format = FORMAT_VERSION + 1;
        assert!(message(open(forge(&future, &[])).err().unwrap()).contains("format 2"));
        let unknown = forge(&header(SCHEMA_VERSION, &["kv", "no_such_table"]), &[]);
        assert!(message(open(unknown).err().unwrap()).contains("unknown table \"no_such_table\""));
        let bad_number = forge(&header(SCHEMA_VERSION, &["kv"]), &[(2, "k", b"v")]);
        assert!(message(open(bad_number).err().unwrap()).contains("table number 2"));
    }

    #[tokio::test]
    async fn an_older_schema_is_upgraded_through_the_migrations() {
        let entry = crate::types::KvEntry {
            lock_index: 0,
            key: "old".into(),
            flags: 0,
            value: b"v".to_vec(),
            session: String::new(),
            create_index: 4,
            modify_index: 4,
        };
        let bytes = crate::store::codec::encode(&entry);
        let old = forge(&header(1, &["kv"]), &[(1, "old", &bytes)]);
        let archive = open_loaded(old).unwrap();
        assert_eq!(archive.meta.schema_version, SCHEMA_VERSION);
        assert_eq!(archive.meta.index, 9);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .apply(Command::RestoreSnapshot(Box::new(archive)))
            .await
            .unwrap();
        let read = store.read().unwrap();
        assert_eq!(read.get(KV, "old").unwrap().unwrap().value, b"v");
        assert!(read.global_index().unwrap() > 9);
    }

    #[tokio::test]
    async fn offline_save_reads_a_closed_data_dir() {
        let (dir, store) = store_with_data().await;
        let online = open_loaded(snapshot(&store)).unwrap();
        store.close();
        let mut out = Vec::new();
        let meta = save_offline(dir.path(), &mut out).unwrap();
        assert_eq!(meta.index, online.meta.index);
        let offline = open(out).unwrap();
        let a: Vec<_> = online.records().map(|r| r.unwrap()).collect();
        let b: Vec<_> = offline.records().map(|r| r.unwrap()).collect();
        assert_eq!(a, b);
        let missing = save_offline(&dir.path().join("nope"), Vec::new()).unwrap_err();
        assert!(message(missing).contains("no Legate data"));
    }
}
