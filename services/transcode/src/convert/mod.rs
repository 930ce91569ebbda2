//! The converters, each a pure function over bytes with its own limits;
//! `crate::pipeline` picks one for a part and a device profile.

pub mod html;
pub mod image;
pub mod media;
pub mod office;
pub mod pdf;
pub mod slides;
pub mod text;
