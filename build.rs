//! Generates the gRPC server and client code from `proto/` with a vendored `protoc`, so building
//! needs no system protobuf compiler, and writes the file descriptor set that reflection serves.
//! Also tells cargo when the web console's built files (`console/dist`, embedded by
//! `src/console/assets.rs`) change, so a rebuilt console is embedded by the next build.

use std::{env, path::PathBuf};

/// The API's files. Their imports resolve from the include path `proto` (the buf module's root):
/// `google/api/field_behavior.proto` is vendored there, the well-known types come with protoc.
/// prost also generates `google.api` (the FieldBehavior enum) into OUT_DIR, which nothing includes.
const PROTOS: &[&str] = &[
    "proto/backoffice/webhooks/v1/webhook.proto",
    "proto/backoffice/webhooks/v1/delivery.proto",
    "proto/backoffice/webhooks/v1/audit.proto",
    "proto/backoffice/webhooks/v1/admin.proto",
    "proto/backoffice/webhooks/v1/ingest.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // `prost::Name` on every message: the CLI finds a message's descriptor by its full name to
    // print it in the canonical proto3 JSON mapping (src/cli/output.rs).
    config.enable_type_names();
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("webhooks_descriptor.bin"))
        .build_server(true)
        .build_client(true)
        // Undecodable requests are INVALID_ARGUMENT, not prost's INTERNAL (src/api/codec.rs).
        .codec_path("crate::api::codec::ProtoCodec")
        .compile_with_config(config, PROTOS, &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    // refinery embeds migrations at compile time: a new file must trigger a rebuild.
    println!("cargo:rerun-if-changed=migrations");
    watch_console_dist();
    Ok(())
}

/// rust-embed cannot tell cargo which files it read, and a file added to `console/dist` is read
/// by no `include_bytes!` yet: watch the folder itself. Cargo treats a watched path that does not
/// exist as always changed (rebuilding the crate on every build), so while `console/dist` is
/// missing watch `console/` instead, where building the console creates it; with no console
/// at all there is nothing to watch.
fn watch_console_dist() {
    for path in ["console/dist", "console"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
            return;
        }
    }
}
