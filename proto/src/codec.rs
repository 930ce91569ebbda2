//! The session service's codec: prost's, with a small encode buffer. A
//! held ActiveSync Ping is a server-streaming `Hold` that stays open for up
//! to an hour and sends one small message; tonic gives every streamed
//! response an encode buffer of the codec's size for the stream's life,
//! which at prost's default (8 KiB) was most of what a held Ping cost the
//! session node. The buffer grows when a message needs more, so nothing
//! else changes; decoding keeps prost's default.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Bytes an encode buffer starts with: a `HoldEnd` or `DeliverResponse`
/// fits with room to spare.
const ENCODE_BUFFER: usize = 256;

/// prost's yield threshold, unchanged.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// prost encoding and decoding with a [`ENCODE_BUFFER`]-byte encode buffer.
#[derive(Debug, Clone)]
pub struct LeanCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for LeanCodec<T, U> {
    fn default() -> Self {
        Self { _pd: PhantomData }
    }
}

impl<T, U> Codec for LeanCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(ENCODE_BUFFER, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(BufferSettings::default())
    }
}
