fn main() {
    if std::env::args().nth(1).as_deref() == Some(reparent_harness::sys::client::HELPER_ARG) {
        reparent_harness::sys::sandbox::main();
    }
}
