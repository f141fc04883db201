fn main() {
    eprintln!("dibs-aof: not built yet");
    std::process::exit(2);
}
