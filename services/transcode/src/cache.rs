//! Converted previews, kept by (content hash, device profile, converter
//! version) so an attachment mailed to a thousand phones of one model is
//! converted once: concurrent requests for the same key wait for the one
//! conversion in flight, and the least recently used previews go when the
//! cache is over its byte budget. A new converter version is a new key,
//! so an upgrade never serves an old rendering.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use pushmail_common::blob::BlobRef;
use tokio::sync::OnceCell;

/// What a preview is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    content: String,
    profile: String,
    converter: &'static str,
}

impl Key {
    /// The key of converting `content` for `profile` (any stable
    /// rendering of it) with `converter` (name and version).
    pub(crate) fn new(content: &[u8], profile: impl Into<String>, converter: &'static str) -> Self {
        Self {
            content: BlobRef::of(content).as_str().to_owned(),
            profile: profile.into(),
            converter,
        }
    }
}

impl Key {
    /// A strong validator of the preview this key names (the same key
    /// always converts to the same bytes): the device's `ETag`.
    pub(crate) fn etag(&self) -> String {
        let text = format!("{}|{}|{}", self.content, self.profile, self.converter);
        let digest = BlobRef::of(text.as_bytes());
        digest.as_str()["sha256:".len()..][..32].to_owned()
    }
}

/// A cached preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub content_type: String,
    pub bytes: Vec<u8>,
    /// Pages of the source (PDF), else 1.
    pub page_count: u32,
}

type Slot = Arc<OnceCell<Arc<Entry>>>;

#[derive(Default)]
struct Inner {
    /// Done and in-flight conversions; the tick orders the done ones by use.
    slots: HashMap<Key, (Slot, u64)>,
    by_use: BTreeMap<u64, Key>,
    tick: u64,
    bytes: usize,
}

/// A bounded, single-flight preview cache.
pub(crate) struct Cache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

impl Cache {
    /// A cache holding at most `max_bytes` of previews.
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The preview under `key`, converting it with `convert` if nobody has
    /// (an error is not cached: the next request tries again).
    pub(crate) async fn get_or_convert<F, Fut, E>(
        &self,
        key: &Key,
        convert: F,
    ) -> Result<Arc<Entry>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Entry, E>>,
    {
        let slot = {
            let mut inner = self.lock();
            inner.tick += 1;
            let tick = inner.tick;
            let (slot, old_tick) = match inner.slots.get_mut(key) {
                Some((slot, used)) => {
                    let old = *used;
                    *used = tick;
                    (slot.clone(), Some(old))
                }
                None => {
                    let slot = Slot::default();
                    inner.slots.insert(key.clone(), (slot.clone(), tick));
                    (slot, None)
                }
            };
            if let Some(old) = old_tick {
                inner.by_use.remove(&old);
            }
            inner.by_use.insert(tick, key.clone());
            slot
        };
        let mut converted = false;
        let entry = slot
            .get_or_try_init(|| async {
                converted = true;
                convert().await.map(Arc::new)
            })
            .await;
        match entry {
            Ok(entry) => {
                let entry = entry.clone();
                if converted {
                    self.account(entry.bytes.len());
                }
                Ok(entry)
            }
            Err(err) => {
                let mut inner = self.lock();
                if let Some((failed, tick)) = inner.slots.get(key)
                    && Arc::ptr_eq(failed, &slot)
                    && failed.get().is_none()
                {
                    let tick = *tick;
                    inner.slots.remove(key);
                    inner.by_use.remove(&tick);
                }
                Err(err)
            }
        }
    }

    /// Adds `size` bytes and evicts the least recently used finished
    /// previews until the cache is within its budget.
    fn account(&self, size: usize) {
        let mut inner = self.lock();
        inner.bytes += size;
        while inner.bytes > self.max_bytes {
            let Some((&tick, _)) = inner.by_use.iter().find(|(_, key)| {
                inner
                    .slots
                    .get(*key)
                    .is_some_and(|(slot, _)| slot.get().is_some())
            }) else {
                break;
            };
            if let Some(key) = inner.by_use.remove(&tick)
                && let Some((slot, _)) = inner.slots.remove(&key)
            {
                inner.bytes -= slot.get().map_or(0, |e| e.bytes.len());
            }
        }
    }

    /// Bytes of previews held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn entry(size: usize) -> Entry {
        Entry {
            page_count: 1,
            content_type: "image/jpeg".into(),
            bytes: vec![0; size],
        }
    }

    #[tokio::test]
    async fn the_same_content_and_profile_is_converted_once_even_at_once() {
        let cache = Arc::new(Cache::new(1 << 20));
        let calls = Arc::new(AtomicUsize::new(0));
        let key = Key::new(b"attachment", "w320", "image/1");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (cache, calls, key) = (cache.clone(), calls.clone(), key.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_convert(&key, || async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            Ok::<_, std::io::Error>(entry(10))
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().bytes.len(), 10);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Another profile or converter version is another conversion.
        let other = Key::new(b"attachment", "w480", "image/1");
        let newer = Key::new(b"attachment", "w320", "image/2");
        assert_ne!(key, other);
        assert_ne!(key, newer);
    }

    #[tokio::test]
    async fn failures_are_not_kept_and_the_least_recently_used_go_first() {
        let cache = Cache::new(100);
        let key = |n: u8| Key::new(&[n], "p", "c/1");
        let failed = cache
            .get_or_convert(&key(0), || async { Err(std::io::Error::other("corrupt")) })
            .await;
        assert!(failed.is_err());
        let retried = cache
            .get_or_convert(&key(0), || async { Ok::<_, std::io::Error>(entry(40)) })
            .await;
        assert!(retried.is_ok(), "a failure is tried again");
        cache
            .get_or_convert(&key(1), || async { Ok::<_, std::io::Error>(entry(40)) })
            .await
            .unwrap();
        // Touch 0, so 1 is the least recently used when 2 does not fit.
        cache
            .get_or_convert(&key(0), || async { Ok::<_, std::io::Error>(entry(99)) })
            .await
            .unwrap();
        cache
            .get_or_convert(&key(2), || async { Ok::<_, std::io::Error>(entry(40)) })
            .await
            .unwrap();
        assert_eq!(cache.bytes(), 80);
        let calls = AtomicUsize::new(0);
        let again = |n: u8| {
            let calls = &calls;
            let cache = &cache;
            async move {
                cache
                    .get_or_convert(&key(n), || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, std::io::Error>(entry(1))
                    })
                    .await
                    .unwrap()
            }
        };
        again(0).await;
        again(2).await;
        assert_eq!(calls.load(Ordering::SeqCst), 0, "0 and 2 stayed");
        again(1).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "1 was evicted");
    }
}
