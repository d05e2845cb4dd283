//! Generates the gRPC clients (no servers) and messages from the buf module in `../../proto`
//! with a vendored `protoc`, so building needs no system protobuf compiler; also the
//! `google.rpc` error details the service sends in `grpc-status-details-bin`.

use std::{env, path::PathBuf};

/// The API's files and the error details; imports resolve from the module root `../../proto`.
const PROTOS: &[&str] = &[
    "../../proto/backoffice/webhooks/v1/webhook.proto",
    "../../proto/backoffice/webhooks/v1/delivery.proto",
    "../../proto/backoffice/webhooks/v1/admin.proto",
    "../../proto/backoffice/webhooks/v1/ingest.proto",
    "../../proto/google/rpc/status.proto",
    "../../proto/google/rpc/error_details.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // `prost::Name` on every message: callers (the `webhooks` CLI) find a message's descriptor
    // in FILE_DESCRIPTOR_SET by its full name, e.g. to print it as proto3 JSON.
    config.enable_type_names();
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("webhooks_client_descriptor.bin"))
        .build_server(false)
        .build_client(true)
        .compile_with_config(config, PROTOS, &["../../proto"])?;
    println!("cargo:rerun-if-changed=../../proto");
    Ok(())
}
