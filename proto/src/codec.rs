//! The session service's codec: prost's, with small buffers. A held
//! ActiveSync Ping is a server-streaming `Hold` that stays open for up to
//! an hour and sends one small message; tonic gives every streamed
//! response an encode buffer of the codec's size for the stream's life on
//! the sending side, and a decode buffer of it on the receiving side
//! (tonic's `Streaming`, allocated when the response starts). At prost's
//! default (8 KiB) each was most of what a held Ping cost: the encode
//! buffer in the session node, the decode buffer in the activesync front
//! door. Both grow when a message needs more, so nothing else changes.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Bytes a buffer starts with: a `HoldEnd` or `DeliverResponse` fits with
/// room to spare.
const BUFFER: usize = 256;

/// prost's yield threshold, unchanged.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// prost encoding and decoding with [`BUFFER`]-byte buffers.
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
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(BUFFER, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(BufferSettings::new(BUFFER, YIELD_THRESHOLD))
    }
}
