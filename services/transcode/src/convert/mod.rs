//! The converters, each a pure function over bytes with its own limits;
//! the service around them (profiles, cache, streaming) comes with the
//! rest of [6/9].

pub mod html;
pub mod image;
pub mod media;
pub mod office;
pub mod text;
