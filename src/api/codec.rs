//! The protobuf codec of the generated servers (and clients): prost's, except that a request
//! that does not decode is the caller's mistake, INVALID_ARGUMENT, not INTERNAL.
//!
//! `tonic_prost::ProstCodec` answers a message it cannot decode (a truncated field, a wrong
//! wire type, invalid UTF-8 in a `string`) with INTERNAL, which the gRPC status-code guide
//! reserves for the server's own bugs and which callers must not retry and should report.
//! build.rs points tonic-prost-build at this codec with `codec_path`.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// `application/grpc+proto` through prost, with decode failures as INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct ProtoCodec<T, U> {
    _messages: PhantomData<(T, U)>,
}

impl<T, U> Default for ProtoCodec<T, U> {
    fn default() -> Self {
        Self {
            _messages: PhantomData,
        }
    }
}

impl<T, U> Codec for ProtoCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    // Encoding is prost's unchanged: it fails only on a bug.
    type Encoder = ProstEncoder<T>;
    type Decoder = StrictDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        StrictDecoder {
            _message: PhantomData,
        }
    }
}

/// Decodes a `U`; a message that does not decode is INVALID_ARGUMENT naming what failed.
#[derive(Debug, Clone)]
pub struct StrictDecoder<U> {
    _message: PhantomData<U>,
}

impl<U: Message + Default> Decoder for StrictDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|error| undecodable(std::any::type_name::<U>(), &error))
    }

    fn buffer_settings(&self) -> BufferSettings {
        ProstDecoder::<U>::default().buffer_settings()
    }
}

/// INVALID_ARGUMENT for a message of type `rust_type` that prost could not decode. prost's
/// error names the field path (`WebhookFilter.name: invalid string value: data is not UTF-8
/// encoded`); the message type is given by its proto name, not the Rust path.
pub(crate) fn undecodable(rust_type: &str, error: &prost::DecodeError) -> Status {
    let message = rust_type.rsplit("::").next().unwrap_or(rust_type);
    crate::api::convert::error(
        tonic::Code::InvalidArgument,
        crate::api::convert::Reason::MalformedRequest,
        format!(
            "the request is not a valid {message} message: {}",
            error
                .to_string()
                .trim_start_matches("failed to decode Protobuf message: ")
        ),
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_names_the_message_and_the_field() {
        let error = crate::proto::v1::ListWebhooksRequest::decode(&b"\x12\x02\xff\xfe"[..])
            .expect_err("invalid UTF-8 in a string field");
        let status = undecodable(
            std::any::type_name::<crate::proto::v1::ListWebhooksRequest>(),
            &error,
        );
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status
                .message()
                .starts_with("the request is not a valid ListWebhooksRequest message: "),
            "{}",
            status.message()
        );
        assert!(status.message().contains("UTF-8"), "{}", status.message());
    }
}
