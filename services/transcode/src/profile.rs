//! Device profiles: what a phone can show. A request names a configured
//! profile or brings its own; either way it is checked and reduced to a
//! canonical key, so two requests that mean the same profile share one
//! cached preview.

use pushmail_proto::transcode::v1 as wire;

/// Bounds on a profile a request brings.
const WIDTH: std::ops::RangeInclusive<u32> = 16..=4096;
const BYTES: std::ops::RangeInclusive<u64> = 1024..=(64 << 20);

/// A profile that cannot be used, and which of its fields is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// The screen width is outside the bounds.
    #[error("screen_width {0} is outside {min}–{max}", min = WIDTH.start(), max = WIDTH.end())]
    Width(u32),
    /// The largest preview is outside the bounds.
    #[error("max_bytes {0} is outside {min}–{max}", min = BYTES.start(), max = BYTES.end())]
    Bytes(u64),
    /// An accepted type is not a MIME type or range.
    #[error("accepts: {0:?} is not a MIME type")]
    NotMime(String),
    /// No type is accepted.
    #[error("accepts names no MIME type")]
    AcceptsNothing,
}

/// What a device can show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// Screen width, pixels.
    pub screen_width: u32,
    /// MIME types rendered (lowercase, sorted; `type/*` wildcards).
    accepts: Vec<String>,
    /// Largest preview, bytes.
    pub max_bytes: u64,
    /// Keep remote images in HTML bodies.
    pub allow_remote_images: bool,
}

impl Profile {
    /// A checked profile.
    pub fn new(
        screen_width: u32,
        accepts: impl IntoIterator<Item = String>,
        max_bytes: u64,
        allow_remote_images: bool,
    ) -> Result<Self, ProfileError> {
        if !WIDTH.contains(&screen_width) {
            return Err(ProfileError::Width(screen_width));
        }
        if !BYTES.contains(&max_bytes) {
            return Err(ProfileError::Bytes(max_bytes));
        }
        let mut accepts: Vec<String> = accepts
            .into_iter()
            .map(|a| a.trim().to_ascii_lowercase())
            .filter(|a| !a.is_empty())
            .collect();
        if let Some(bad) = accepts.iter().find(|a| !is_media_range(a)) {
            return Err(ProfileError::NotMime(bad.clone()));
        }
        if accepts.is_empty() {
            return Err(ProfileError::AcceptsNothing);
        }
        accepts.sort();
        accepts.dedup();
        Ok(Self {
            screen_width,
            accepts,
            max_bytes,
            allow_remote_images,
        })
    }

    /// Whether the device renders `mime` (`type/subtype`).
    pub fn accepts(&self, mime: &str) -> bool {
        let mime = mime.to_ascii_lowercase();
        let major = mime.split('/').next().unwrap_or_default();
        self.accepts
            .iter()
            .any(|a| *a == mime || *a == "*/*" || a.strip_suffix("/*").is_some_and(|m| m == major))
    }

    /// The largest preview in bytes, as a length.
    pub(crate) fn max_len(&self) -> usize {
        usize::try_from(self.max_bytes).unwrap_or(usize::MAX)
    }

    /// A stable rendering of everything that changes a conversion.
    pub fn key(&self) -> String {
        format!(
            "w={};a={};b={};r={}",
            self.screen_width,
            self.accepts.join(","),
            self.max_bytes,
            u8::from(self.allow_remote_images)
        )
    }
}

/// The profile a request brings, checked at the edge.
impl TryFrom<&wire::DeviceProfile> for Profile {
    type Error = ProfileError;

    fn try_from(profile: &wire::DeviceProfile) -> Result<Self, Self::Error> {
        Self::new(
            profile.screen_width,
            profile.accepts.iter().cloned(),
            profile.max_bytes,
            profile.allow_remote_images,
        )
    }
}

fn is_media_range(text: &str) -> bool {
    let mut halves = text.splitn(2, '/');
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+*".contains(&b))
    };
    matches!((halves.next(), halves.next()), (Some(a), Some(b)) if token(a) && token(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(accepts: &[&str]) -> Profile {
        Profile::new(320, accepts.iter().map(|a| (*a).to_owned()), 10_000, false).unwrap()
    }

    #[test]
    fn wildcards_and_case() {
        let p = profile(&["image/*", "Text/HTML"]);
        assert!(p.accepts("image/webp"));
        assert!(p.accepts("text/html"));
        assert!(!p.accepts("text/plain"));
        assert!(profile(&["*/*"]).accepts("application/pdf"));
    }

    #[test]
    fn the_key_ignores_order_and_duplicates() {
        assert_eq!(
            profile(&["text/plain", "image/jpeg"]).key(),
            profile(&["image/jpeg", "text/plain", "image/jpeg"]).key()
        );
        assert_ne!(
            profile(&["image/jpeg"]).key(),
            profile(&["image/png"]).key()
        );
    }

    #[test]
    fn out_of_bounds_profiles_are_refused() {
        let accepts = || vec!["image/jpeg".to_owned()];
        let refused = |width, accepts, bytes| Profile::new(width, accepts, bytes, false).err();
        assert_eq!(refused(8, accepts(), 10_000), Some(ProfileError::Width(8)));
        assert_eq!(refused(320, accepts(), 10), Some(ProfileError::Bytes(10)));
        assert_eq!(
            refused(320, Vec::new(), 10_000),
            Some(ProfileError::AcceptsNothing)
        );
        assert_eq!(
            refused(320, vec!["jpeg".to_owned()], 10_000),
            Some(ProfileError::NotMime("jpeg".to_owned()))
        );
        assert_eq!(
            ProfileError::Width(8).to_string(),
            "screen_width 8 is outside 16–4096"
        );
    }
}
