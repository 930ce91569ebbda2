//! Generates the Rust types and tonic stubs from `pushmail/**/*.proto`.
//!
//! `protoc` comes from the `protoc-bin-vendored` crate so a fresh machine
//! needs no system package; set `PROTOC` to use another binary.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "pushmail/common/v1/common.proto",
    "pushmail/events/v1/events.proto",
    "pushmail/binding/v1/binding.proto",
    "pushmail/session/v1/session.proto",
    "pushmail/transcode/v1/transcode.proto",
    "pushmail/mailbox/v1/mailbox.proto",
];

/// The session service's contract, generated with [`LeanCodec`]'s path.
///
/// [`LeanCodec`]: ../src/codec.rs
const SESSION: &str = "pushmail/session/v1/session.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protoc = match std::env::var_os("PROTOC") {
        Some(path) => PathBuf::from(path),
        None => protoc_bin_vendored::protoc_bin_path()?,
    };
    let include = protoc_bin_vendored::include_path()?;

    let protos: Vec<PathBuf> = PROTOS.iter().map(PathBuf::from).collect();
    let includes = [PathBuf::from("."), include];
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(&protoc);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("pushmail_descriptor.bin"))
        .compile_with_config(config, &protos, &includes)?;
    // The session service again, over its own: its streams are held for
    // up to an hour each, so their encode buffers start small (src/codec.rs).
    // This pass also rewrites the packages session.proto imports (common),
    // identically while both passes use the same prost settings: keep them
    // the same.
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(&protoc);
    tonic_prost_build::configure()
        .codec_path("crate::codec::LeanCodec")
        .compile_with_config(config, &[PathBuf::from(SESSION)], &includes)?;

    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
