//! Snapshots: a consistent, point-in-time archive of the whole store, taken from one redb read
//! transaction (MVCC: writers keep going), and its atomic restore as one write operation.
//!
//! The archive copies every record table (`tables::RECORD_TABLES`) row by row as raw bytes —
//! the stored values are already versioned `codec` envelopes, so nothing is decoded — plus the
//! `meta` facts (global index, schema version) and `table_index`, in the header.
//!
//! Format (version 1); integers are big-endian:
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
//! `verify` checks the whole archive (checksum first, then structure) before anything uses
//! it: a truncated or altered archive fails the checksum, a foreign file the magic (a Consul
//! snapshot, a gzip tar, is named as such), and one from a newer schema, a newer format or with
//! a table this build does not know is refused. An archive from an older schema is upgraded on
//! `load` by running the migrations on a scratch database.
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
use super::tx::{ReadTx, WriteTx};
use super::{migrate, Command, Store, DB_FILE};
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable};
use ring::digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;
use std::path::Path;

/// The first bytes of every Legate snapshot.
pub const MAGIC: &[u8; 16] = b"LEGATE-SNAPSHOT\n";
/// The archive layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const DIGEST_LEN: usize = 32;
/// Table number of the end marker.
const END: u8 = 0;
/// End marker plus record count.
const END_LEN: usize = 1 + 8;
/// A header larger than this is not one this build wrote.
const MAX_HEADER: usize = 1 << 20;

/// What an archive says about itself (its JSON header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    /// Archive layout version (`FORMAT_VERSION`).
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

/// Who is taking the snapshot, recorded in its metadata.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub node: String,
    pub datacenter: String,
}

fn invalid(reason: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("invalid snapshot: {reason}"))
}

fn io_error(err: std::io::Error) -> StoreError {
    StoreError::Storage(format!("cannot write snapshot: {err}"))
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

/// A writer that hashes everything it passes on.
struct Hashing<W: Write> {
    inner: std::io::BufWriter<W>,
    hash: digest::Context,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner: std::io::BufWriter::with_capacity(256 * 1024, inner),
            hash: digest::Context::new(&digest::SHA256),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.hash.update(bytes);
        self.inner.write_all(bytes).map_err(io_error)
    }

    /// Appends the checksum and flushes.
    fn finish(mut self) -> Result<()> {
        let sum = self.hash.finish();
        self.inner.write_all(sum.as_ref()).map_err(io_error)?;
        self.inner.flush().map_err(io_error)
    }
}

fn meta_value(txn: &ReadTransaction, name: &str) -> Result<u64> {
    match txn.open_table(META) {
        Ok(t) => Ok(t.get(name)?.map(|v| v.value()).unwrap_or(0)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Writes a snapshot of `read` to `out` and returns its metadata.
pub fn export(read: &ReadTx, origin: &Origin, out: impl Write) -> Result<Metadata> {
    export_txn(&read.txn, origin, crate::clock::now_ms(), out)
}

fn export_txn(
    txn: &ReadTransaction,
    origin: &Origin,
    created_at_ms: u64,
    out: impl Write,
) -> Result<Metadata> {
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
        schema_version: meta_value(txn, META_SCHEMA_VERSION)?,
        index: meta_value(txn, META_INDEX)?,
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
    let mut w = Hashing::new(out);
    w.put(MAGIC)?;
    w.put(&(header.len() as u32).to_be_bytes())?;
    w.put(&header)?;
    let mut count: u64 = 0;
    for (number, t) in RECORD_TABLES.iter().enumerate() {
        let table = match txn.open_table(tables::raw(t.name)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let number = u8::try_from(number + 1).expect("fewer than 255 record tables");
        for row in table.iter()? {
            let (k, v) = row?;
            let (key, value) = (k.value().as_bytes(), v.value());
            w.put(&[number])?;
            w.put(&(key.len() as u32).to_be_bytes())?;
            w.put(key)?;
            w.put(&(value.len() as u32).to_be_bytes())?;
            w.put(value)?;
            count += 1;
        }
    }
    w.put(&[END])?;
    w.put(&count.to_be_bytes())?;
    w.finish()?;
    Ok(meta)
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
    export_txn(&txn, &Origin::default(), crate::clock::now_ms(), out)
}

/// A verified archive, held in memory.
pub struct Archive {
    data: Vec<u8>,
    pub meta: Metadata,
    /// `meta.tables` resolved to this build's table names.
    tables: Vec<&'static str>,
    /// Where the records lie in `data`.
    records: Range<usize>,
    /// Number of records.
    pub count: u64,
}

/// A restore command carries the archive's bytes; decoding verifies them again, so an entry
/// from a log is as trustworthy as an upload.
impl bincode::Encode for Archive {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        encoder: &mut E,
    ) -> std::result::Result<(), bincode::error::EncodeError> {
        self.data.encode(encoder)
    }
}

impl<C> bincode::Decode<C> for Archive {
    fn decode<D: bincode::de::Decoder<Context = C>>(
        decoder: &mut D,
    ) -> std::result::Result<Self, bincode::error::DecodeError> {
        let data: Vec<u8> = bincode::Decode::decode(decoder)?;
        load(data).map_err(|e| bincode::error::DecodeError::OtherString(e.to_string()))
    }
}

bincode::impl_borrow_decode!(Archive);

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("index", &self.meta.index)
            .field("size", &self.data.len())
            .field("count", &self.count)
            .finish()
    }
}

/// One record of an archive: table, key, stored bytes.
pub type RawRecord<'a> = (&'static str, &'a str, &'a [u8]);

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| invalid(format!("record runs past the end at byte {}", self.pos)))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
}

/// Reads the record at the cursor; `None` at the end marker.
fn next_record<'a>(c: &mut Cursor<'a>, tables: &[&'static str]) -> Result<Option<RawRecord<'a>>> {
    let number = c.u8()?;
    if number == END {
        return Ok(None);
    }
    let table = *tables.get(usize::from(number) - 1).ok_or_else(|| {
        invalid(format!(
            "record names table number {number}, not in the header"
        ))
    })?;
    let key_len = c.u32()? as usize;
    let key = std::str::from_utf8(c.take(key_len)?)
        .map_err(|_| invalid(format!("a key of table {table} is not UTF-8")))?;
    let value_len = c.u32()? as usize;
    let value = c.take(value_len)?;
    Ok(Some((table, key, value)))
}

/// Checks a whole archive: magic, checksum, header, versions, tables and every record's
/// framing. Nothing is restored from an archive that did not pass.
pub fn verify(data: Vec<u8>) -> Result<Archive> {
    if data.starts_with(&[0x1f, 0x8b]) {
        return Err(invalid(
            "this is a gzip archive (a Consul snapshot?), not a Legate snapshot; \
             Legate restores only snapshots taken by Legate",
        ));
    }
    if !data.starts_with(MAGIC) {
        if !data.is_empty() && MAGIC.starts_with(&data) {
            return Err(invalid("truncated (it ends inside the header)"));
        }
        return Err(invalid(
            "not a Legate snapshot (it does not start with the LEGATE-SNAPSHOT header)",
        ));
    }
    let min = MAGIC.len() + 4 + END_LEN + DIGEST_LEN;
    if data.len() < min {
        return Err(invalid(format!(
            "truncated ({} bytes, shorter than any snapshot)",
            data.len()
        )));
    }
    let body_end = data.len() - DIGEST_LEN;
    let sum = digest::digest(&digest::SHA256, &data[..body_end]);
    if sum.as_ref() != &data[body_end..] {
        return Err(invalid(
            "SHA-256 checksum mismatch: the archive is truncated or corrupt",
        ));
    }
    let mut c = Cursor {
        data: &data[..body_end],
        pos: MAGIC.len(),
    };
    let header_len = c.u32()? as usize;
    if header_len > MAX_HEADER {
        return Err(invalid(format!(
            "header of {header_len} bytes is too large"
        )));
    }
    let meta: Metadata = serde_json::from_slice(c.take(header_len)?)
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
    let records = start..c.pos - 1;
    let declared = c.u64()?;
    if declared != count || c.pos != body_end {
        return Err(invalid(format!(
            "holds {count} records where its end says {declared}"
        )));
    }
    Ok(Archive {
        data,
        meta,
        tables,
        records,
        count,
    })
}

/// Verifies an archive for restore, upgrading one from an older schema to this build's.
pub fn load(data: Vec<u8>) -> Result<Archive> {
    let archive = verify(data)?;
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
            (t.check)(table, key, value)
                .map_err(|e| invalid(format!("a record does not decode: {e}")))?;
        }
    }
    Ok(archive)
}

impl Archive {
    /// Size of the whole archive in bytes.
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// Every record, in archive order.
    pub fn records(&self) -> impl Iterator<Item = Result<RawRecord<'_>>> + '_ {
        let mut c = Cursor {
            data: &self.data[..self.records.end + 1],
            pos: self.records.start,
        };
        std::iter::from_fn(move || next_record(&mut c, &self.tables).transpose())
    }

    /// Bytes a record takes in the archive.
    pub fn record_size(key: &str, value: &[u8]) -> u64 {
        (1 + 4 + key.len() + 4 + value.len()) as u64
    }
}

/// Replays an older-schema archive through this build's migrations on a scratch database and
/// exports it again, keeping its index, origin and creation time.
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
        for name in &archive.tables {
            let mut t = txn.open_table(tables::raw(name))?;
            for record in archive.records() {
                let (table, key, value) = record?;
                if table == *name {
                    t.insert(key, value)?;
                }
            }
        }
    }
    txn.commit()?;
    migrate::run(&db, SCHEMA_VERSION)?;
    let origin = Origin {
        node: archive.meta.node.clone(),
        datacenter: archive.meta.datacenter.clone(),
    };
    let mut out = Vec::with_capacity(archive.size());
    export_txn(
        &db.begin_read()?,
        &origin,
        archive.meta.created_at_ms,
        &mut out,
    )?;
    verify(out)
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
        tx.put_raw(table, key, value)?;
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
    let store = Store::open(data_dir)?;
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
        let archive = load(bytes).unwrap();
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
        let archive = load(snapshot(&source)).unwrap();
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
        let bytes = snapshot(&store);
        for at in [0, 20, bytes.len() / 2, bytes.len() - 40, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x01;
            let err = message(verify(damaged).err().unwrap());
            assert!(
                err.contains("checksum") || err.contains("not a Legate snapshot"),
                "byte {at}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn truncated_archives_are_refused() {
        let (_dir, store) = store_with_data().await;
        let bytes = snapshot(&store);
        for len in [0, 5, 16, 40, bytes.len() / 2, bytes.len() - 1] {
            let err = message(verify(bytes[..len].to_vec()).err().unwrap());
            assert!(
                err.contains("truncated") || err.contains("not a Legate snapshot"),
                "{len} bytes: {err}"
            );
        }
        // Extra bytes after the checksum break it too.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(message(verify(longer).err().unwrap()).contains("checksum"));
    }

    #[test]
    fn foreign_files_are_named() {
        let gzip = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3];
        assert!(message(verify(gzip).err().unwrap()).contains("Consul snapshot"));
        let text = b"{\"not\": \"a snapshot\"}".to_vec();
        assert!(message(verify(text).err().unwrap()).contains("not a Legate snapshot"));
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
        let err = message(load(forged).err().unwrap());
        assert!(err.contains("a record does not decode"), "{err}");
        assert!(err.contains("table kv at key \"k\""), "{err}");
    }

    /// Regression: an index at the top of the range restored, and the next write wrapped.
    #[test]
    fn indexes_that_cannot_grow_are_refused() {
        let mut top = header(SCHEMA_VERSION, &["kv"]);
        top.index = u64::MAX;
        let err = message(verify(forge(&top, &[])).err().unwrap());
        assert!(
            err.contains("beyond what this store can continue from"),
            "{err}"
        );
        let mut table = header(SCHEMA_VERSION, &["kv"]);
        table.table_indexes.insert("kv".into(), MAX_INDEX + 1);
        assert!(verify(forge(&table, &[])).is_err());
        let mut fine = header(SCHEMA_VERSION, &["kv"]);
        fine.index = MAX_INDEX;
        assert!(verify(forge(&fine, &[])).is_ok());
    }

    #[test]
    fn newer_schemas_formats_and_unknown_tables_are_refused() {
        let newer = forge(&header(SCHEMA_VERSION + 1, &["kv"]), &[]);
        assert!(message(verify(newer).err().unwrap()).contains("newer than this build"));
        let mut future = header(SCHEMA_VERSION, &["kv"]);
        future.format = FORMAT_VERSION + 1;
        assert!(message(verify(forge(&future, &[])).err().unwrap()).contains("format 2"));
        let unknown = forge(&header(SCHEMA_VERSION, &["kv", "no_such_table"]), &[]);
        assert!(message(verify(unknown).err().unwrap()).contains("unknown table \"no_such_table\""));
        let bad_number = forge(&header(SCHEMA_VERSION, &["kv"]), &[(2, "k", b"v")]);
        assert!(message(verify(bad_number).err().unwrap()).contains("table number 2"));
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
        let archive = load(old).unwrap();
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
        let online = load(snapshot(&store)).unwrap();
        store.close();
        let mut out = Vec::new();
        let meta = save_offline(dir.path(), &mut out).unwrap();
        assert_eq!(meta.index, online.meta.index);
        let offline = verify(out).unwrap();
        let a: Vec<_> = online.records().map(|r| r.unwrap()).collect();
        let b: Vec<_> = offline.records().map(|r| r.unwrap()).collect();
        assert_eq!(a, b);
        let missing = save_offline(&dir.path().join("nope"), Vec::new()).unwrap_err();
        assert!(message(missing).contains("no Legate data"));
    }
}
