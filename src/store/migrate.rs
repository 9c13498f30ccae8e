//! Applies `migrations/` in order when the store opens.

#[path = "../../migrations/mod.rs"]
mod steps;

use super::error::{Result, StoreError};
use super::tables::{META, META_SCHEMA_VERSION};
use redb::{Database, Durability, ReadableDatabase};

/// The schema version recorded in the file (0 for a new file).
pub fn schema_version(db: &Database) -> Result<u64> {
    let txn = db.begin_read()?;
    match txn.open_table(META) {
        Ok(t) => Ok(t.get(META_SCHEMA_VERSION)?.map(|v| v.value()).unwrap_or(0)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Brings the file up to schema `target`, one durable transaction per step.
pub fn run(db: &Database, target: u64) -> Result<()> {
    let found = schema_version(db)?;
    let supported = steps::MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for step in steps::MIGRATIONS
        .iter()
        .filter(|m| m.version > found && m.version <= target)
    {
        tracing::info!(
            version = step.version,
            name = step.name,
            "applying schema migration"
        );
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        (step.apply)(&txn)?;
        txn.open_table(META)?
            .insert(META_SCHEMA_VERSION, step.version)?;
        txn.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tables::{KV, SCHEMA_VERSION};
    use crate::store::Command;
    use crate::store::{codec, Readable, Store, DB_FILE};
    use crate::types::KvEntry;

    /// A file written at schema 1 (no tombstone table) opens with today's build, keeps its
    /// entries and indexes, and gains the newer tables.
    #[tokio::test]
    async fn opens_a_schema_1_file() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(DB_FILE)).unwrap();
            run(&db, 1).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let entry = KvEntry {
                    lock_index: 0,
                    key: "old".into(),
                    flags: 7,
                    value: b"v1".to_vec(),
                    session: String::new(),
                    create_index: 3,
                    modify_index: 3,
                };
                let bytes = codec::encode(&entry);
                txn.open_table(KV.def())
                    .unwrap()
                    .insert("old", bytes.as_slice())
                    .unwrap();
                txn.open_table(META).unwrap().insert("index", 3).unwrap();
            }
            txn.commit().unwrap();
            assert_eq!(schema_version(&db).unwrap(), 1);
        }
        let store = Store::open(dir.path()).unwrap();
        let read = store.read().unwrap();
        let entry = read.get(KV, "old").unwrap().unwrap();
        assert_eq!((entry.flags, entry.modify_index), (7, 3));
        assert_eq!(read.global_index().unwrap(), 3);
        let next = store.apply(Command::kv_set("new", b"x")).await.unwrap();
        assert!(next.applied());
        assert_eq!(store.read().unwrap().global_index().unwrap(), 4);
        store.close();
        drop(store);
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        assert_eq!(schema_version(&db).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(META_SCHEMA_VERSION, 99)
            .unwrap();
        txn.commit().unwrap();
        let err = run(&db, SCHEMA_VERSION).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
            "{err}"
        );
    }
}
