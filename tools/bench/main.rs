fn main() {
    eprintln!("dibs-bench: not built yet");
    std::process::exit(2);
}
