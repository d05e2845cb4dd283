//! Generates the gRPC server and client code from `proto/` with a vendored `protoc`, so building
//! needs no system protobuf compiler, and writes the file descriptor set that reflection serves.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/backoffice/webhooks/v1/webhook.proto",
    "proto/backoffice/webhooks/v1/delivery.proto",
    "proto/backoffice/webhooks/v1/admin.proto",
    "proto/backoffice/webhooks/v1/ingest.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("webhooks_descriptor.bin"))
        .build_server(true)
        .build_client(true)
        .compile_with_config(config, PROTOS, &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    // refinery embeds migrations at compile time: a new file must trigger a rebuild.
    println!("cargo:rerun-if-changed=migrations");
    Ok(())
}
