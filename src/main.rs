// jemalloc rather than the system allocator: it keeps no header beside each allocation, so the
// parts of hyper's 8 KiB per-connection buffers that a parked long-poll never writes stay
// untouched and cost no resident memory (10,000 blocking watchers: 227 MB RSS with glibc's
// malloc, 127 MB with jemalloc; `benches/run-blocking.sh`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    std::process::exit(legate::cli::run(std::env::args().collect()));
}
