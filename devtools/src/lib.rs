//! Development tooling of persona-engine, kept out of the library's own build so that a
//! first `cargo run --example quickstart` compiles only what the library needs: the
//! criterion benchmarks (`cargo bench --bench engine`, source in `../benches/`) and the
//! check that `include/persona_engine.h` matches what cbindgen generates
//! (`cargo test --test ffi_header`). Nothing here is part of the library.
