fn main() {
    std::process::exit(legate::cli::run(std::env::args().collect()));
}
