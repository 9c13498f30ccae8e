//! `legate keygen`, as `consul keygen`: a new gossip encryption key, 32 random bytes in
//! base64.

use base64::Engine as _;

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {}

pub fn run(_: KeygenArgs) -> i32 {
    let key: [u8; 32] = rand::random();
    println!("{}", base64::engine::general_purpose::STANDARD.encode(key));
    0
}
