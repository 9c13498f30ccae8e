//! `/v1/snapshot`: GET takes a point-in-time archive of the whole state (writes keep going;
//! `X-Consul-Index` is the snapshot's index), PUT restores one atomically, as Consul's
//! `snapshot_endpoint.go`. The archive has Consul's container layout around Legate's own
//! records (`store::snapshot`); a truncated, corrupt or foreign archive (a Consul snapshot
//! among them) is refused with a 400 before anything changes.
//!
//! Neither direction holds an archive in memory: GET streams it as it is written from one read
//! transaction, PUT streams the body into an unnamed temporary file in the data dir, checking
//! its first bytes before reading on, and only then verifies and applies it. One restore runs
//! at a time: another arriving meanwhile waits for it, then runs (Consul's raft takes user
//! restores one by one in its leader loop, so a second one waits and then applies, and answers
//! as any restore). Unlike Consul, which spools the second upload to a temporary file first,
//! the waiting one is not read until its turn: one upload on disk at a time.

use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::store::snapshot::{self, Export, Origin};
use crate::store::Command;
use bytes::Bytes;
use std::io::{Read, Write};
use tokio::sync::mpsc;
use warp::http::{Method, StatusCode};

/// Chunks in flight between the archive's reader or writer thread and the connection.
const CHUNKS_IN_FLIGHT: usize = 8;

pub async fn handle(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    match req.method {
        Method::GET => save(ctx, req).await,
        _ => restore(ctx, req).await,
    }
}

fn join_error(err: tokio::task::JoinError) -> ApiError {
    ApiError::internal(format!("snapshot task failed: {err}"))
}

/// The archive as it is written, chunk by chunk, to the response; a client that stops reading
/// holds at most `CHUNKS_IN_FLIGHT` of them.
struct ChannelWriter(mpsc::Sender<std::io::Result<Bytes>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn save(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    // Validates `dc` and friends; `stale` needs nothing on a single node.
    ctx.query_options(&req)?;
    let store = ctx.store.clone();
    let origin = Origin {
        node: ctx.config.node_name.clone(),
        datacenter: ctx.config.datacenter.clone(),
    };
    let (chunks, body) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let (prepared, index) = tokio::sync::oneshot::channel::<u64>();
    tokio::task::spawn_blocking(move || {
        let written = store.read().and_then(|read| {
            let export = Export::prepare(&read, &origin)?;
            let _ = prepared.send(export.meta.index);
            export.write(ChannelWriter(chunks.clone()))
        });
        if let Err(e) = written {
            // Before the answer started this reaches the handler; after, it breaks the body
            // off, and the client's copy fails its checksum rather than looking complete.
            let _ = chunks.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let index = match index.await {
        Ok(index) => index,
        // The export failed before it was prepared; its error is in the body channel.
        Err(_) => return Err(first_error(body).await),
    };
    Ok(Reply::stream(Some("application/octet-stream"), chunk_stream(body)).read_meta(index))
}

async fn first_error(mut body: mpsc::Receiver<std::io::Result<Bytes>>) -> ApiError {
    match body.recv().await {
        Some(Err(e)) => ApiError::internal(format!("failed to take snapshot: {e}")),
        _ => ApiError::internal("failed to take snapshot"),
    }
}

fn chunk_stream(
    mut body: mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static {
    futures_util::stream::poll_fn(move |cx| body.poll_recv(cx))
}

/// The uploaded body as the restore's reader sees it: chunks handed over by the connection,
/// the end when it has no more (or stopped reading).
struct ChannelReader {
    chunks: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

async fn restore(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    ctx.query_options(&req)?;
    // Taken in arrival order (tokio's mutex is fair).
    let _restoring = ctx.restoring.lock().await;
    let (chunks, received) = mpsc::channel(CHUNKS_IN_FLIGHT);
    // The data dir: the upload's temporary file is as large as the archive.
    let dir = ctx
        .store
        .path()
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    // The whole archive is received and verified before the running state is touched.
    let receiving = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            chunks: received,
            current: Bytes::new(),
        };
        snapshot::receive(reader, &dir).and_then(snapshot::load)
    });
    let streamed = req
        .stream_body(&ctx, |chunk| {
            let chunks = chunks.clone();
            // Refused after its first bytes: the reader is gone, stop reading the upload.
            async move { chunks.send(chunk).await.is_ok() }
        })
        .await;
    drop(chunks);
    let received = receiving.await.map_err(join_error)?;
    // A body cut short (too large, stalled) explains a truncated archive better.
    streamed?;
    let archive = received?;
    // No runner or timer may write between the restore and the re-arm from its state.
    ctx.local.stop();
    ctx.sessions.stop();
    let restored = ctx
        .store
        .apply(Command::RestoreSnapshot(Box::new(archive)))
        .await;
    // Even after a failed restore (the store is then unchanged) the runtime must run again.
    let resumed = crate::agent::resume_after_restore(&ctx).await;
    let index = restored?.restored_index();
    resumed
        .map_err(|e| ApiError::internal(format!("restored, but resuming the agent failed: {e}")))?;
    tracing::info!(index, "restored snapshot");
    Ok(Reply::empty(StatusCode::OK))
}
