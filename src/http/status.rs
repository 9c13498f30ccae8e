//! `/v1/status/*` and `/v1/catalog/datacenters`: a single server is its own leader and only peer.

use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};

pub async fn leader(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    Reply::json(&ctx.config.server_address(), opts.pretty)
}

pub async fn peers(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    Reply::json(&[ctx.config.server_address()], opts.pretty)
}

pub async fn datacenters(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    Reply::json(&[&ctx.config.datacenter], opts.pretty)
}
