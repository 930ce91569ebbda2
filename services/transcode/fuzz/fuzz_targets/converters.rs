//! The transcode crate's converter modules themselves, compiled here
//! without the rest of the service (shared by every target). `slides`
//! reaches `office` through `super`, as in the crate.
#![allow(dead_code, unreachable_pub)]

#[path = "../../src/convert/html.rs"]
pub mod html;
#[path = "../../src/convert/image.rs"]
pub mod image;
#[path = "../../src/convert/office.rs"]
pub mod office;
#[path = "../../src/convert/pdf.rs"]
pub mod pdf;
#[path = "../../src/convert/slides.rs"]
pub mod slides;
#[path = "../../src/convert/text.rs"]
pub mod text;
